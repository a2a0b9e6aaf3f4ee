//! FOCUS cost data (FinOps Open Cost and Usage Specification 1.0–1.2):
//! exports as CSV (plain or gzip) or Parquet, from a file or a folder, into
//! the store's `focus_data_table`, with FOCUS's own column names.
//!
//! The table's columns and schema are the spine's (`driftline_pipeline::focus`).
//!
//! - `export.rs`: reading one export file, row by row;
//! - `rows.rs`: checking a row and building the table's batches;
//! - `tags.rs`: the `Tags` column as real exports write it.

mod export;
mod rows;
mod tags;

use std::path::PathBuf;

use driftline_pipeline::store::Store;
use driftline_pipeline::{DeadLetter, now_ms};

pub use driftline_pipeline::focus::{FOCUS_COLUMNS, Kind, TABLE, schema};
pub use export::is_export_file;

use crate::{CollectReport, ProgressFn, SourceError, expand_inputs};

/// The store table rejected rows and unreadable files go to.
pub const DEAD_LETTERS: &str = "dead_letters";

/// Loads FOCUS exports into a store once (`driftline cost import`).
pub struct CostImport {
    /// Files, folders or globs of exports.
    pub inputs: Vec<String>,
}

impl CostImport {
    /// Bytes the exports hold, for progress.
    pub fn files(&self) -> (Vec<PathBuf>, Vec<SourceError>) {
        let (files, errs) = expand_inputs(&self.inputs, is_export_file);
        (files, errs.into_iter().map(Into::into).collect())
    }

    /// Reads every export into `store`: good rows to `focus_data_table`,
    /// each rejected row (file:line and why) and each unreadable file to
    /// `dead_letters` and the report's errors. `published` counts rows.
    pub fn run(&self, store: &dyn Store, progress: ProgressFn<'_>) -> CollectReport {
        let (files, mut errors) = self.files();
        let mut report = CollectReport::default();
        for file in &files {
            let mut append = |batch: arrow::record_batch::RecordBatch| {
                store.append(TABLE, &batch).map_err(|e| e.to_string())
            };
            match export::read_export(file, &mut append) {
                Ok(read) => {
                    tracing::info!(
                        file = %file.display(),
                        rows = read.rows,
                        rejected = read.rejected.len(),
                        "cost export read"
                    );
                    report.published += read.rows;
                    report.notes.extend(
                        read.notes
                            .into_iter()
                            .map(|n| format!("{}: {n}", file.display())),
                    );
                    errors.extend(read.rejected);
                }
                Err(e) => errors.push(e),
            }
            progress(file, file.metadata().map(|m| m.len()).unwrap_or(0));
        }
        if !errors.is_empty() {
            let dead: Vec<DeadLetter> = errors
                .iter()
                .map(|e| DeadLetter {
                    source: e.source.clone(),
                    reason: e.reason.clone(),
                    ..Default::default()
                })
                .collect();
            let written = driftline_pipeline::schema::dead_letters_batch(&dead, now_ms())
                .map_err(|e| e.to_string())
                .and_then(|b| store.append(DEAD_LETTERS, &b).map_err(|e| e.to_string()));
            if let Err(e) = written {
                report.errors.push(SourceError {
                    source: DEAD_LETTERS.into(),
                    reason: format!("cannot record the rejected rows: {e}"),
                });
            }
        }
        report.errors.splice(0..0, errors);
        report
    }
}

#[cfg(test)]
mod tests;
