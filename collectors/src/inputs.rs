//! Turning what a user typed (files, directories, globs) into files.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{input}: bad glob pattern: {reason}")]
    BadGlob { input: String, reason: String },
    #[error("{input}: glob matched no files")]
    NoMatch { input: String },
    #[error("{path}: cannot read directory: {reason}")]
    Dir { path: String, reason: String },
}

impl From<InputError> for crate::SourceError {
    fn from(e: InputError) -> Self {
        let (source, reason) = match e {
            InputError::NotFound(input) => (input, "no such file or directory".to_string()),
            InputError::BadGlob { input, reason } => (input, format!("bad glob pattern: {reason}")),
            InputError::NoMatch { input } => (input, "glob matched no files".to_string()),
            InputError::Dir { path, reason } => (path, format!("cannot read directory: {reason}")),
        };
        crate::SourceError { source, reason }
    }
}

/// Expands each input: a file stays itself, a directory contributes the
/// files below it (recursively) that `keep` accepts, a glob its matches.
/// Inputs that cannot be expanded are returned as errors beside the files.
pub fn expand_inputs(
    inputs: &[String],
    keep: impl Fn(&Path) -> bool,
) -> (Vec<PathBuf>, Vec<InputError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let p = Path::new(input);
        if p.is_file() {
            files.push(p.to_path_buf());
        } else if p.is_dir() {
            if let Err(e) = walk(p, &keep, &mut files) {
                errors.push(e);
            }
        } else if input.contains(['*', '?', '[']) {
            match glob::glob(input) {
                Ok(paths) => {
                    let before = files.len();
                    files.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()));
                    if files.len() == before {
                        errors.push(InputError::NoMatch {
                            input: input.clone(),
                        });
                    }
                }
                Err(e) => errors.push(InputError::BadGlob {
                    input: input.clone(),
                    reason: e.msg.to_string(),
                }),
            }
        } else {
            errors.push(InputError::NotFound(input.clone()));
        }
    }
    (files, errors)
}

fn walk(
    dir: &Path,
    keep: &impl Fn(&Path) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<(), InputError> {
    let err = |e: std::io::Error| InputError::Dir {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, keep, out)?;
        } else if keep(&p) {
            out.push(p);
        }
    }
    Ok(())
}
