//! The thread that turns a scan's published chunks into batches. A loader
//! hands its chunk over and goes on reading: the file a core reads can
//! take twice as long as another's (at 100 k resources, the AWS Config
//! file against the state file), and the core whose file is done then
//! builds the other's batches instead of idling. One thread, so the
//! batches keep the order their chunks were published in (a later item
//! wins a tie, `register_tables`). The records go back to the thread
//! that made them, to be freed there at its next publish: freed by the
//! batch thread, a 1 M scan took a tenth more CPU and a 100 k one peaked a
//! tenth higher. (One thread keeps pace with the loaders of two cores, a
//! fifth of a scan's work being the batches'; loaders that build a chunk
//! themselves when the thread is behind cost a 1 M scan on two cores
//! 2–5 CPU s more, and were left out.)

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};

use driftline_pipeline::{BusError, Record};

/// Chunks waiting to be built at most: a loader that gets that far ahead
/// waits, so the records in flight stay bounded. Two, not four, since the
/// loaders read items typed: they outran the thread, and the four chunks
/// waiting raised a 100 k scan's peak by 20-30 MB for no time saved.
const WAITING: usize = 2;

/// A chunk and the thread that made it.
type Chunk = (ThreadId, Vec<Record>);

pub(super) struct Batcher<R> {
    chunks: Option<SyncSender<Chunk>>,
    thread: Option<JoinHandle<()>>,
    built: Arc<Mutex<Built<R>>>,
}

/// What the thread built, the first error it met, and the chunks built,
/// by the thread that made them.
#[derive(Default)]
struct Built<R> {
    read: R,
    error: Option<String>,
    spent: HashMap<ThreadId, Vec<Vec<Record>>>,
}

impl<R: Default + Send + 'static> Batcher<R> {
    /// Starts the thread; `build` adds a chunk's batches to `R`.
    pub(super) fn start(
        build: impl Fn(&mut [Record], &Mutex<R>) -> Result<(), BusError> + Send + 'static,
    ) -> Self {
        let (chunks, waiting) = sync_channel(WAITING);
        let built = Arc::new(Mutex::new(Built::<R>::default()));
        let into = built.clone();
        let thread = std::thread::Builder::new()
            .name("scan-batches".into())
            .spawn(move || run(waiting, &into, build))
            .ok();
        Self {
            chunks: thread.as_ref().map(|_| chunks),
            thread,
            built,
        }
    }

    /// Hands a chunk over; an error the thread met before is returned.
    /// The caller's chunks built since its last call are freed here.
    pub(super) fn send(&self, records: Vec<Record>) -> Result<(), BusError> {
        let me = std::thread::current().id();
        let spent = {
            let mut built = lock(&self.built);
            if let Some(e) = &built.error {
                return Err(BusError::Encode(e.clone()));
            }
            built.spent.remove(&me)
        };
        drop(spent);
        match &self.chunks {
            Some(chunks) => chunks
                .send((me, records))
                .map_err(|_| BusError::Encode("the batch thread stopped".into())),
            None => Err(BusError::Encode("the batch thread did not start".into())),
        }
    }

    /// Waits for every chunk handed over to be built.
    pub(super) fn finish(mut self) -> Result<R, BusError> {
        drop(self.chunks.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            return Err(BusError::Encode("the batch thread panicked".into()));
        }
        let built = std::mem::take(&mut *lock(&self.built));
        match built.error {
            Some(e) => Err(BusError::Encode(e)),
            None => Ok(built.read),
        }
    }
}

fn run<R: Default>(
    waiting: Receiver<Chunk>,
    built: &Mutex<Built<R>>,
    build: impl Fn(&mut [Record], &Mutex<R>) -> Result<(), BusError>,
) {
    // The batches go into a `Mutex<R>` of the thread's own, moved out at
    // the end, so `build` locks nothing the loaders wait on.
    let read = Mutex::new(R::default());
    while let Ok((maker, mut records)) = waiting.recv() {
        let outcome = build(&mut records, &read);
        let mut b = lock(built);
        if let Err(e) = outcome {
            b.error.get_or_insert_with(|| e.to_string());
        }
        b.spent.entry(maker).or_default().push(records);
    }
    let read = read.into_inner().unwrap_or_else(|e| e.into_inner());
    lock(built).read = read;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftline_pipeline::DeadLetter;

    fn chunk(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                Record::DeadLetter(DeadLetter {
                    source: i.to_string(),
                    ..Default::default()
                })
            })
            .collect()
    }

    #[test]
    fn every_chunk_is_built_once_in_the_order_it_was_sent() {
        let b = Batcher::<Vec<usize>>::start(|records, read| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            lock(read).push(records.len());
            Ok(())
        });
        for n in 1..=20 {
            b.send(chunk(n)).unwrap();
        }
        assert_eq!(b.finish().unwrap(), (1..=20).collect::<Vec<_>>());
    }

    #[test]
    fn a_build_error_is_returned_by_a_later_send_or_at_the_end() {
        let b = Batcher::<()>::start(|_, _| Err(BusError::Encode("no".into())));
        b.send(chunk(1)).unwrap();
        let e = b.finish().unwrap_err();
        assert!(e.to_string().contains("no"), "{e}");
    }
}
