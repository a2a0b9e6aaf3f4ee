//! One batch written as one Parquet row group with its columns encoded on
//! every core. An append is what a busy stream waits on: the telemetry
//! writer holds its offsets (and a full bus answers pushes 503) until the
//! file is on disk, and encoding plus compressing a column at a time left
//! the second core idle for most of it.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Mutex;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
use parquet::errors::ParquetError;

/// Writes `batch` through `writer` (created over `file`, nothing written
/// yet) as one row group, and returns the file with the footer written.
pub(super) fn write_row_group(
    writer: ArrowWriter<File>,
    batch: &RecordBatch,
) -> Result<File, ParquetError> {
    // `ArrowWriter` built the file's schema and its Arrow metadata (the
    // timestamps' time zone); only the encoding is done here.
    let (mut file, factory) = writer.into_serialized_writer()?;
    let writers = factory.create_column_writers(0)?;
    let mut leaves = Vec::with_capacity(writers.len());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        leaves.extend(compute_leaves(field, column)?);
    }
    if leaves.len() != writers.len() {
        return Err(ParquetError::General(format!(
            "{} leaf columns for {} column writers",
            leaves.len(),
            writers.len()
        )));
    }
    // Columns differ a lot in cost (label lists against booleans): each
    // thread takes the next column left rather than a fixed share.
    let queue = Mutex::new(
        writers
            .into_iter()
            .zip(leaves)
            .enumerate()
            .collect::<VecDeque<_>>(),
    );
    let encode = || -> Result<Vec<(usize, ArrowColumnChunk)>, ParquetError> {
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let Some((i, (mut w, leaf))) = next else {
                return Ok(done);
            };
            w.write(&leaf)?;
            done.push((i, w.close()?));
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(batch.num_columns());
    let mut chunks = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(encode)).collect();
        let mut chunks = encode()?;
        for h in helpers {
            let theirs = h
                .join()
                .map_err(|_| ParquetError::General("a column encoder panicked".into()))??;
            chunks.extend(theirs);
        }
        Ok::<_, ParquetError>(chunks)
    })?;
    chunks.sort_by_key(|(i, _)| *i);
    let mut row_group = file.next_row_group()?;
    for (_, chunk) in chunks {
        chunk.append_to_row_group(&mut row_group)?;
    }
    row_group.close()?;
    file.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ParquetStore, Store};
    use crate::telemetry::prompb;
    use crate::telemetry::tables::{METRIC_SAMPLES, MetricRows};

    #[test]
    fn a_row_group_encoded_on_many_threads_reads_back_as_written() {
        let mut rows = MetricRows::default();
        let req = prompb::WriteRequest {
            timeseries: (0..3000)
                .map(|i| prompb::TimeSeries {
                    labels: vec![
                        prompb::Label::new("__name__", format!("m{}", i % 7)),
                        prompb::Label::new("instance", format!("host-{i}")),
                        prompb::Label::new("job", "api"),
                    ],
                    samples: vec![prompb::Sample {
                        value: i as f64 / 3.0,
                        timestamp: 1_700_000_000_000 + i,
                    }],
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        };
        rows.push_request("remote_write", &req);
        let batch = rows.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = ParquetStore::open(dir.path()).unwrap();
        store.append(METRIC_SAMPLES, &batch).unwrap();
        let read = store.read(METRIC_SAMPLES).unwrap();
        // The schema (list columns, the timestamps' time zone) and every
        // value come back in order.
        let read = arrow::compute::concat_batches(&batch.schema(), &read).unwrap();
        assert_eq!(read, batch);
        let files = store.files(METRIC_SAMPLES);
        let meta = parquet::file::reader::SerializedFileReader::new(File::open(&files[0]).unwrap())
            .map(|r| parquet::file::reader::FileReader::metadata(&r).clone())
            .unwrap();
        assert_eq!(meta.num_row_groups(), 1);
        assert_eq!(meta.file_metadata().num_rows(), 3000);
    }
}
