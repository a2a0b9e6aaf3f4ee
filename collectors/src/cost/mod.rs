//! FOCUS cost data (FinOps Open Cost and Usage Specification 1.0–1.2):
//! exports as CSV (plain or gzip) or Parquet, from a file, a folder or an
//! S3 prefix, into
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

use std::collections::HashSet;
use std::path::PathBuf;

use driftline_pipeline::store::{QueryLimits, Store};
use driftline_pipeline::{DeadLetter, now_ms};

pub use driftline_pipeline::focus::{FOCUS_COLUMNS, Kind, TABLE, schema};
pub use export::{is_export_file, read_csv_bytes, read_parquet_bytes};

use crate::s3::S3;
use crate::{CollectReport, ProgressFn, SourceError, expand_inputs};

/// The store table rejected rows and unreadable files go to.
pub const DEAD_LETTERS: &str = "dead_letters";

/// Loads FOCUS exports into a store (`driftline cost import`, and the
/// service's cost watcher): files, folders, globs and `s3://BUCKET/PREFIX`.
/// An export whose rows the store already holds (by `x_SourceFile`) is
/// skipped, so importing a folder again, or on every pass, loads only what
/// is new.
pub struct CostImport {
    /// Files, folders, globs or `s3://` prefixes of exports.
    pub inputs: Vec<String>,
    s3: Option<S3>,
}

/// One export to read.
pub struct Export {
    /// The path or `s3://BUCKET/KEY`: the rows' `x_SourceFile`.
    pub name: String,
    pub size: u64,
    at: Location,
}

enum Location {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl CostImport {
    pub fn new(inputs: Vec<String>) -> Self {
        Self { inputs, s3: None }
    }

    /// Every export the inputs name, largest first is not promised: in the
    /// order listed.
    pub fn exports(&mut self) -> (Vec<Export>, Vec<SourceError>) {
        let (local, remote): (Vec<String>, Vec<String>) = self
            .inputs
            .iter()
            .cloned()
            .partition(|i| !i.starts_with("s3://"));
        let (files, errs) = expand_inputs(&local, is_export_file);
        let mut errors: Vec<SourceError> = errs.into_iter().map(Into::into).collect();
        let mut out: Vec<Export> = files
            .into_iter()
            .map(|f| Export {
                name: f.display().to_string(),
                size: f.metadata().map(|m| m.len()).unwrap_or(0),
                at: Location::File(f),
            })
            .collect();
        for url in remote {
            let failed = |reason: String| SourceError {
                source: url.clone(),
                reason,
            };
            let Some((bucket, prefix)) = crate::s3::parse_url(&url) else {
                errors.push(failed("an S3 location is s3://BUCKET/PREFIX".into()));
                continue;
            };
            if self.s3.is_none() {
                match S3::new() {
                    Ok(s3) => self.s3 = Some(s3),
                    Err(e) => {
                        errors.push(failed(e.to_string()));
                        continue;
                    }
                }
            }
            let s3 = self.s3.as_ref().expect("made above");
            match s3.list(&bucket, &prefix) {
                Ok(objects) => out.extend(
                    objects
                        .into_iter()
                        .filter(|o| is_export_file(std::path::Path::new(&o.key)))
                        .map(|o| Export {
                            name: format!("s3://{bucket}/{}", o.key),
                            size: o.size,
                            at: Location::S3 {
                                bucket: bucket.clone(),
                                key: o.key,
                            },
                        }),
                ),
                Err(e) => errors.push(failed(e)),
            }
        }
        (out, errors)
    }

    /// The exports the store holds rows of.
    fn imported(store: &dyn Store) -> Result<HashSet<String>, String> {
        let limits = QueryLimits {
            max_rows: usize::MAX - 1,
            ..QueryLimits::default()
        };
        let answer = store
            .query(
                &format!("SELECT DISTINCT x_SourceFile FROM {TABLE}"),
                &limits,
            )
            .map_err(|e| e.to_string())?;
        Ok(answer
            .cells()
            .map_err(|e| e.to_string())?
            .into_iter()
            .flatten()
            .collect())
    }

    fn read(
        &self,
        export: &Export,
        out: &mut dyn FnMut(arrow::record_batch::RecordBatch) -> Result<(), String>,
    ) -> Result<export::ExportRead, SourceError> {
        match &export.at {
            Location::File(path) => export::read_export(path, out),
            Location::S3 { bucket, key } => {
                let failed = |reason: String| SourceError {
                    source: export.name.clone(),
                    reason,
                };
                let s3 = self
                    .s3
                    .as_ref()
                    .ok_or_else(|| failed("no S3 client".into()))?;
                let (bytes, _) = s3.get(bucket, key).map_err(failed)?;
                if key.to_ascii_lowercase().ends_with(".parquet") {
                    export::read_parquet(bytes::Bytes::from(bytes), &export.name, out)
                } else {
                    export::read_csv_bytes(&bytes, &export.name, out)
                }
                .map_err(failed)
            }
        }
    }

    /// Reads every export not yet in `store`: good rows to
    /// `focus_data_table`, each rejected row (file:line and why) and each
    /// unreadable export to `dead_letters` and the report's errors.
    /// `published` counts rows.
    pub fn run(&mut self, store: &dyn Store, progress: ProgressFn<'_>) -> CollectReport {
        let (exports, errors) = self.exports();
        self.load(exports, errors, store, progress)
    }

    /// `run` over exports listed already (by `exports`), with the errors
    /// the listing met.
    pub fn load(
        &self,
        exports: Vec<Export>,
        mut errors: Vec<SourceError>,
        store: &dyn Store,
        progress: ProgressFn<'_>,
    ) -> CollectReport {
        let mut report = CollectReport::default();
        let imported = match Self::imported(store) {
            Ok(i) => i,
            Err(e) => {
                report.errors.push(SourceError {
                    source: TABLE.into(),
                    reason: format!("cannot tell which exports are loaded already: {e}"),
                });
                return report;
            }
        };
        let mut skipped = 0;
        for export in &exports {
            if imported.contains(&export.name) {
                skipped += 1;
                progress(std::path::Path::new(&export.name), export.size);
                continue;
            }
            let mut append = |batch: arrow::record_batch::RecordBatch| {
                store.append(TABLE, &batch).map_err(|e| e.to_string())
            };
            match self.read(export, &mut append) {
                Ok(read) => {
                    tracing::info!(
                        export = %export.name,
                        rows = read.rows,
                        rejected = read.rejected.len(),
                        "cost export read"
                    );
                    report.published += read.rows;
                    report.notes.extend(
                        read.notes
                            .into_iter()
                            .map(|n| format!("{}: {n}", export.name)),
                    );
                    errors.extend(read.rejected);
                }
                Err(e) => errors.push(e),
            }
            progress(std::path::Path::new(&export.name), export.size);
        }
        if skipped > 0 {
            report.notes.push(format!(
                "{skipped} export(s) already imported, skipped (a restated export needs a new file name)"
            ));
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
