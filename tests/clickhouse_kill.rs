//! ClickHouse killed with SIGKILL while the store inserts, three times,
//! then started again on the same data: every batch the store took is in
//! its table exactly once, whole.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::clickhouse::Server;
use common::*;
use driftline_pipeline::store::{ClickHouseStore, FinOpsConfig};
use driftline_pipeline::{DeadLetter, Store};

const BATCHES: usize = 40;
const ROWS: usize = 50_000;

/// Batch `i`: rows that each say which batch and row they are.
fn batch(i: usize) -> arrow::record_batch::RecordBatch {
    let rows: Vec<DeadLetter> = (0..ROWS)
        .map(|j| DeadLetter {
            source: "sigkill-test".into(),
            reason: format!("batch {i} row {j}"),
            partition: Some(i as i32),
            offset: Some(j as i64),
            key: None,
            payload: Some("x".repeat(400)),
        })
        .collect();
    driftline_pipeline::schema::dead_letters_batch(&rows, 0).unwrap()
}

#[test]
fn sigkill_mid_insert_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut server) = Server::start(tmp.path()) else {
        return;
    };
    let spool = tmp.path().join("spool");
    let store = Arc::new(
        ClickHouseStore::open(
            &server.url,
            &FinOpsConfig::default(),
            spool.clone(),
            1 << 30,
        )
        .unwrap(),
    );
    let appended = Arc::new(AtomicUsize::new(0));
    let appender = {
        let (store, appended) = (store.clone(), appended.clone());
        std::thread::spawn(move || {
            for i in 0..BATCHES {
                // Taken: inserted, or kept in the spool for later.
                store.append("dead_letters", &batch(i)).unwrap();
                appended.fetch_add(1, Ordering::Release);
            }
        })
    };
    for at in [5, 15, 25] {
        wait_for(120, "the store to take more batches", || {
            appended.load(Ordering::Acquire) >= at
        });
        // An append (building the batch, inserting it) takes about 170 ms
        // here: the kill lands in one.
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..170)));
        server.kill();
        std::thread::sleep(Duration::from_millis(500));
        server.restart();
    }
    appender.join().unwrap();
    wait_for(120, "the spool to drain into ClickHouse", || {
        store.maintain().is_ok()
            && !walk(&spool)
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "spool"))
    });
    let refused: Vec<_> = walk(&spool)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e != "spool"))
        .collect();
    assert!(refused.is_empty(), "set aside: {refused:?}");
    let per_batch = server.query(
        "SELECT partition, count(), uniqExact(offset) FROM dead_letters \
         GROUP BY partition ORDER BY partition",
    );
    let want: String = (0..BATCHES)
        .map(|i| format!("{i}\t{ROWS}\t{ROWS}\n"))
        .collect();
    assert_eq!(per_batch, want, "each batch once and whole");
}
