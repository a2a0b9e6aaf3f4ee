//! Remote Terraform state: the S3 backend (bucket/key, workspaces under
//! `env:/`, object versions) and the HTTP backend (GET, optional basic
//! auth). Listing is cheap (one ListObjectsV2 per location; the HTTP backend
//! has no listing, so its body is fetched and kept); the watcher fetches an
//! object only when its ETag changed, and re-parses it only when its
//! `serial` or `lineage` changed.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use serde::Deserialize;

use crate::SourceError;
use crate::s3::S3;

/// Where a state lives, as written on the command line or in driftline.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// `s3://BUCKET/KEY`: the default workspace's object, and every
    /// workspace's `env:/NAME/KEY` beside it.
    S3 { bucket: String, key: String },
    /// `http(s)://…`: Terraform's HTTP backend address. Basic auth comes
    /// from `TF_HTTP_USERNAME` / `TF_HTTP_PASSWORD`, as Terraform reads it.
    Http { url: String },
}

impl StateLocation {
    /// `None` for a local path.
    pub fn parse(s: &str) -> Option<Result<Self, String>> {
        if let Some(rest) = s.strip_prefix("s3://") {
            return Some(match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Self::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }),
                _ => Err(format!("{s}: an S3 state is s3://BUCKET/KEY")),
            });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return Some(match reqwest::Url::parse(s) {
                Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(format!(
                    "{}: put credentials in TF_HTTP_USERNAME / TF_HTTP_PASSWORD, not in the URL",
                    redact(&u)
                )),
                Ok(_) => Ok(Self::Http { url: s.to_string() }),
                Err(e) => Err(format!("{s}: {e}")),
            });
        }
        None
    }

    /// As written: `s3://BUCKET/KEY` or the HTTP backend's address.
    pub fn name(&self) -> String {
        match self {
            StateLocation::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            StateLocation::Http { url } => url.clone(),
        }
    }
}

fn redact(u: &reqwest::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// One remote object: its display name and a stamp that changes when it does.
pub struct RemoteObject {
    pub id: String,
    pub stamp: u64,
}

/// Just enough of a state to tell versions apart without parsing it all.
#[derive(Deserialize, PartialEq, Eq, Clone, Debug)]
pub struct Lineage {
    #[serde(default)]
    pub serial: u64,
    #[serde(default)]
    pub lineage: String,
}

pub fn peek_lineage(bytes: &[u8]) -> Option<Lineage> {
    serde_json::from_slice(bytes).ok()
}

/// Clients for every remote location (built on first use).
pub struct Backends {
    s3: Option<S3>,
    http: reqwest::blocking::Client,
    /// Where each listed object is: id → how to fetch it.
    fetch: HashMap<String, Fetch>,
}

enum Fetch {
    S3 {
        bucket: String,
        key: String,
    },
    /// The HTTP backend's body, already fetched by `list`.
    Body(Vec<u8>),
}

fn hash_of(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

fn err(source: &str, reason: impl std::fmt::Display) -> SourceError {
    SourceError {
        source: source.to_string(),
        reason: reason.to_string(),
    }
}

fn count(backend: &str, outcome: &str) {
    crate::metrics::metrics()
        .state_reads
        .with_label_values(&[backend, outcome])
        .inc();
}

impl Backends {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            s3: None,
            http: driftline_pipeline::http_client(),
            fetch: HashMap::new(),
        })
    }

    fn s3(&mut self) -> Result<&S3, String> {
        if self.s3.is_none() {
            self.s3 = Some(S3::new().map_err(|e| e.to_string())?);
        }
        Ok(self.s3.as_ref().expect("made above"))
    }

    /// The objects at `loc`, each with a stamp that changes with its content.
    pub fn list(&mut self, loc: &StateLocation) -> Result<Vec<RemoteObject>, SourceError> {
        match loc {
            StateLocation::S3 { bucket, key } => self.list_s3(bucket, key),
            StateLocation::Http { url } => {
                let body = self.get_http(url)?;
                // No listing in the HTTP backend: the stamp is the state's
                // own version, so an unchanged state is not parsed again.
                let stamp = match peek_lineage(&body) {
                    Some(l) => hash_of(&[&l.serial.to_string(), &l.lineage]),
                    None => hash_of(&[&String::from_utf8_lossy(&body)]),
                };
                self.fetch.insert(url.clone(), Fetch::Body(body));
                Ok(vec![RemoteObject {
                    id: url.clone(),
                    stamp,
                }])
            }
        }
    }

    fn list_s3(&mut self, bucket: &str, key: &str) -> Result<Vec<RemoteObject>, SourceError> {
        let source = format!("s3://{bucket}/{key}");
        let failed = |e: String| {
            count("s3", "error");
            err(&source, e)
        };
        let mut out = Vec::new();
        // The default workspace at KEY, the others at env:/NAME/KEY.
        for prefix in [key, "env:/"] {
            for o in self
                .s3()
                .map_err(failed)?
                .list(bucket, prefix)
                .map_err(failed)?
            {
                let k = o.key.as_str();
                let wanted = k == key
                    || (k.starts_with("env:/")
                        && k.strip_suffix(key)
                            .is_some_and(|p| p.ends_with('/') && p.len() > "env:/".len()));
                if !wanted {
                    continue;
                }
                let id = format!("s3://{bucket}/{k}");
                self.fetch.insert(
                    id.clone(),
                    Fetch::S3 {
                        bucket: bucket.to_string(),
                        key: k.to_string(),
                    },
                );
                out.push(RemoteObject {
                    id,
                    stamp: hash_of(&[&o.stamp]),
                });
            }
        }
        if out.is_empty() {
            count("s3", "error");
            return Err(err(
                &source,
                "no state object at this key (nor any workspace under env:/)",
            ));
        }
        Ok(out)
    }

    fn get_http(&self, url: &str) -> Result<Vec<u8>, SourceError> {
        let mut req = self.http.get(url);
        if let Ok(user) = std::env::var("TF_HTTP_USERNAME") {
            req = req.basic_auth(user, std::env::var("TF_HTTP_PASSWORD").ok());
        }
        let resp = req.send().map_err(|e| {
            count("http", "error");
            err(url, format!("GET: {}", e.without_url()))
        })?;
        let status = resp.status();
        if !status.is_success() {
            count("http", "error");
            let hint = match status.as_u16() {
                401 | 403 => " (check TF_HTTP_USERNAME / TF_HTTP_PASSWORD)",
                404 => " (no state at this address yet?)",
                _ => "",
            };
            return Err(err(url, format!("GET answered {status}{hint}")));
        }
        resp.bytes()
            .map(|b| b.to_vec())
            .map_err(|e| err(url, format!("reading the body: {}", e.without_url())))
    }

    /// The bytes of a listed object; S3 reads name the version they got.
    pub fn fetch(&self, id: &str) -> Result<(Vec<u8>, Option<String>), SourceError> {
        match self.fetch.get(id) {
            Some(Fetch::Body(b)) => {
                count("http", "read");
                Ok((b.clone(), None))
            }
            Some(Fetch::S3 { bucket, key }) => {
                let read = match &self.s3 {
                    Some(s3) => s3.get(bucket, key),
                    None => Err("no S3 client".to_string()),
                };
                count("s3", if read.is_ok() { "read" } else { "error" });
                read.map_err(|e| err(id, e))
            }
            None => Err(err(id, "not listed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            StateLocation::parse("s3://b/envs/prod.tfstate"),
            Some(Ok(StateLocation::S3 {
                bucket: "b".into(),
                key: "envs/prod.tfstate".into()
            }))
        );
        assert!(StateLocation::parse("s3://b").unwrap().is_err());
        assert!(StateLocation::parse("states/x.tfstate").is_none());
        let e = StateLocation::parse("https://u:secret@tf.example/state")
            .unwrap()
            .unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(matches!(
            StateLocation::parse("https://tf.example/state/prod"),
            Some(Ok(StateLocation::Http { .. }))
        ));
    }
}
