//! Reading one FOCUS export file: CSV (plain or gzip) or Parquet, as AWS
//! Data Exports, Azure Cost Management, Google Cloud (BigQuery view to CSV)
//! and OCI write them. Every row that can be read is kept; each one that
//! cannot is named by file, line and reason.

use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::rows::{RawRow, Rows};
use crate::SourceError;
use driftline_pipeline::focus::{TAGS, focus_column};

/// Rows per batch handed to the store.
pub const BATCH_ROWS: usize = 50_000;

/// What one export gave: batches of good rows, and the rows that were
/// rejected (`source` is `file:line`).
#[derive(Default)]
pub struct ExportRead {
    pub rows: usize,
    pub rejected: Vec<SourceError>,
    pub notes: Vec<String>,
}

/// Whether a file looks like a FOCUS export by its name.
pub fn is_export_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [
        ".csv",
        ".csv.gz",
        ".parquet",
        ".snappy.parquet",
        ".gz.parquet",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

/// What a header cell names.
enum Target {
    Focus(usize),
    Tags,
    Extra,
}

fn targets(headers: &[String]) -> Vec<Target> {
    headers
        .iter()
        .map(|h| {
            if h.trim() == TAGS {
                Target::Tags
            } else {
                focus_column(h).map_or(Target::Extra, Target::Focus)
            }
        })
        .collect()
}

/// Reads `path`, handing each full batch to `out`.
pub fn read_export(
    path: &Path,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<ExportRead, SourceError> {
    let err = |reason: String| SourceError {
        source: path.display().to_string(),
        reason,
    };
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".parquet") {
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        read_parquet(file, &path.display().to_string(), out).map_err(err)
    } else {
        let mut file =
            std::io::BufReader::new(std::fs::File::open(path).map_err(|e| err(e.to_string()))?);
        let gzip = std::io::BufRead::fill_buf(&mut file)
            .map_err(|e| err(e.to_string()))?
            .starts_with(&GZIP_MAGIC);
        let source = path.display().to_string();
        if gzip {
            read_csv(flate2::bufread::MultiGzDecoder::new(file), &source, out)
        } else {
            read_csv(file, &source, out)
        }
        .map_err(err)
    }
}

/// The longest row (header included) read, in bytes: the CSV reader grows
/// its buffer to hold a field, however long.
const MAX_ROW_BYTES: u64 = 16 << 20;

/// Refuses to read on once a row has run past `MAX_ROW_BYTES`; the row
/// loop resets the count before each row.
struct RowLimit<R> {
    inner: R,
    since_row: Rc<Cell<u64>>,
}

impl<R: Read> Read for RowLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.since_row.get() > MAX_ROW_BYTES {
            return Err(std::io::Error::other(format!(
                "a row runs past {} MiB",
                MAX_ROW_BYTES >> 20
            )));
        }
        let n = self.inner.read(buf)?;
        self.since_row.set(self.since_row.get() + n as u64);
        Ok(n)
    }
}

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A CSV export's bytes (gzip is recognised by its magic number).
pub fn read_csv_bytes(
    bytes: &[u8],
    source: &str,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<ExportRead, String> {
    if bytes.starts_with(&GZIP_MAGIC) {
        return read_csv(flate2::read::MultiGzDecoder::new(bytes), source, out);
    }
    read_csv(bytes, source, out)
}

/// Reads CSV as it is decompressed, never whole: what an export declares
/// (a gzip stream's size, a field's length) is not a size to allocate up
/// front, and a gzip bomb costs only time. A UTF-8 byte-order mark (Azure
/// writes one) is dropped by the CSV reader.
fn read_csv(
    text: impl Read,
    source: &str,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<ExportRead, String> {
    let since_row = Rc::new(Cell::new(0));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(RowLimit {
            inner: text,
            since_row: since_row.clone(),
        });
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("line 1: cannot read the header: {e}"))?
        .iter()
        .map(String::from)
        .collect();
    let targets = targets(&headers);
    check_cost_columns(&targets).map_err(|e| format!("line 1: {e}"))?;
    let mut read = ExportRead::default();
    note_columns(&headers, &targets, &mut read);
    let mut rows = Rows::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        since_row.set(0);
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            // The stream itself failed (a corrupt gzip member, a row past
            // the limit): nothing after it can be trusted to line up.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(format!("line {line}: cannot read on: {e}"));
            }
            Err(e) => {
                read.rejected.push(SourceError {
                    source: format!("{source}:{line}"),
                    reason: format!("unreadable CSV: {e}"),
                });
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.len() != headers.len() {
            read.rejected.push(SourceError {
                source: format!("{source}:{line}"),
                reason: format!(
                    "{} fields where the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let mut raw = RawRow::new();
        for ((target, header), value) in targets.iter().zip(&headers).zip(record.iter()) {
            match target {
                Target::Focus(i) => raw.focus[*i] = Some(value),
                Target::Tags => raw.tags = Some(value),
                Target::Extra => raw.extra.push((header, value)),
            }
        }
        push(&mut rows, &raw, source, line, &mut read, out)?;
    }
    flush(&mut rows, out)?;
    Ok(read)
}

/// Every FOCUS cost and usage dataset has these; another FOCUS dataset
/// (1.3's contract commitments, say) or another file does not.
const REQUIRED: &[&str] = &["BilledCost", "ChargePeriodStart"];

fn check_cost_columns(targets: &[Target]) -> Result<(), String> {
    let has = |name: &str| {
        targets.iter().any(|t| {
            matches!(t, Target::Focus(i) if driftline_pipeline::focus::FOCUS_COLUMNS[*i].0 == name)
        })
    };
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| !has(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "not a FOCUS cost and usage export: no {} column",
        missing.join(" or ")
    ))
}

fn push(
    rows: &mut Rows,
    raw: &RawRow<'_>,
    source: &str,
    line: u64,
    read: &mut ExportRead,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<(), String> {
    match rows.push(raw, source, line) {
        Ok(()) => read.rows += 1,
        Err(reason) => read.rejected.push(SourceError {
            source: format!("{source}:{line}"),
            reason,
        }),
    }
    if rows.len() >= BATCH_ROWS {
        flush(rows, out)?;
    }
    Ok(())
}

fn flush(
    rows: &mut Rows,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<(), String> {
    if rows.is_empty() {
        return Ok(());
    }
    out(rows.finish().map_err(|e| e.to_string())?)
}

fn note_columns(headers: &[String], targets: &[Target], read: &mut ExportRead) {
    let extra: Vec<&str> = headers
        .iter()
        .zip(targets)
        .filter(|(_, t)| matches!(t, Target::Extra))
        .map(|(h, _)| h.as_str())
        .collect();
    if !extra.is_empty() {
        read.notes.push(format!(
            "{} column(s) beyond FOCUS kept in x_Extra: {}",
            extra.len(),
            extra.join(", ")
        ));
    }
}

/// `read_parquet` on an export already in memory.
pub fn read_parquet_bytes(
    bytes: &[u8],
    source: &str,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<ExportRead, String> {
    read_parquet(bytes::Bytes::copy_from_slice(bytes), source, out)
}

/// A Parquet export: each column is read as text and goes through the same
/// checks as CSV, so both formats give the same table.
pub fn read_parquet<R: parquet::file::reader::ChunkReader + 'static>(
    file: R,
    source: &str,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<ExportRead, String> {
    // The parquet crate asserts on some corrupt files where it should return
    // an error (fuzzing found a page whose declared bit width is too wide):
    // a corrupt export is an error, as any other, never the end of the
    // process. What was read before the failure was handed on, as with an
    // error part way.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_parquet_unguarded(file, source, out)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("corrupt Parquet: the reader gave up: {what}"))
    })
}

fn read_parquet_unguarded<R: parquet::file::reader::ChunkReader + 'static>(
    file: R,
    source: &str,
    out: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<ExportRead, String> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("not a Parquet file: {e}"))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| format!("cannot read Parquet: {e}"))?;
    let mut read = ExportRead::default();
    let mut rows = Rows::new();
    let mut row_number: u64 = 0;
    let mut noted = false;
    for batch in reader {
        let batch = batch.map_err(|e| format!("row {}: {e}", row_number + 1))?;
        let headers: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let targets = targets(&headers);
        if !noted {
            check_cost_columns(&targets)?;
            note_columns(&headers, &targets, &mut read);
            noted = true;
        }
        let text: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| as_text(c.as_ref()))
            .collect::<Result<_, _>>()?;
        for r in 0..batch.num_rows() {
            row_number += 1;
            let mut raw = RawRow::new();
            for ((target, header), col) in targets.iter().zip(&headers).zip(&text) {
                let v = (!col.is_null(r)).then(|| col.value(r));
                match (target, v) {
                    (_, None) => {}
                    (Target::Focus(i), Some(v)) => raw.focus[*i] = Some(v),
                    (Target::Tags, Some(v)) => raw.tags = Some(v),
                    (Target::Extra, Some(v)) => raw.extra.push((header, v)),
                }
            }
            push(&mut rows, &raw, source, row_number, &mut read, out)?;
        }
    }
    flush(&mut rows, out)?;
    Ok(read)
}

/// A Parquet column as text: timestamps as RFC 3339, maps (Tags written as
/// a map by some exporters) as a JSON object.
fn as_text(col: &dyn Array) -> Result<arrow::array::StringArray, String> {
    if let DataType::Map(_, _) = col.data_type() {
        let map = col.as_map();
        let keys = arrow::compute::cast(map.keys(), &DataType::Utf8).map_err(|e| e.to_string())?;
        let values =
            arrow::compute::cast(map.values(), &DataType::Utf8).map_err(|e| e.to_string())?;
        let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
        let offsets = map.value_offsets();
        let text: arrow::array::StringArray = (0..map.len())
            .map(|i| {
                (!map.is_null(i)).then(|| {
                    let m: serde_json::Map<String, serde_json::Value> = (offsets[i] as usize
                        ..offsets[i + 1] as usize)
                        .map(|j| {
                            let v = if values.is_null(j) {
                                serde_json::Value::Null
                            } else {
                                values.value(j).into()
                            };
                            (keys.value(j).to_string(), v)
                        })
                        .collect();
                    serde_json::Value::Object(m).to_string()
                })
            })
            .collect();
        return Ok(text);
    }
    if let DataType::Timestamp(unit, _) = col.data_type() {
        // By the raw value: a zone name cannot be read without chrono-tz,
        // and the value is UTC whatever the zone says.
        let per_ms: i64 = match unit {
            TimeUnit::Second => -1000,
            TimeUnit::Millisecond => 1,
            TimeUnit::Microsecond => 1000,
            TimeUnit::Nanosecond => 1_000_000,
        };
        let raw = arrow::compute::cast(col, &DataType::Int64).map_err(|e| e.to_string())?;
        let raw = raw.as_primitive::<arrow::datatypes::Int64Type>();
        return Ok(raw
            .iter()
            .map(|v| {
                v.map(|v| {
                    let ms = if per_ms < 0 { v * -per_ms } else { v / per_ms };
                    driftline_pipeline::format_epoch_ms(ms)
                })
            })
            .collect());
    }
    let cast = arrow::compute::cast(col, &DataType::Utf8).map_err(|e| e.to_string())?;
    Ok(cast.as_string::<i32>().clone())
}
