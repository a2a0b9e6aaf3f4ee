//! S3, as the collectors that read objects from it need it: one client
//! (built on first use from the environment's AWS configuration, path-style
//! when the endpoint is overridden), listing a prefix and reading an
//! object, blocking on a runtime of its own. Terraform's S3 backend and the
//! cost exports both read through it.

/// One listed object.
pub struct S3Object {
    pub key: String,
    /// ETag and last-modified time: changes when the object does.
    pub stamp: String,
    pub size: u64,
}

pub struct S3 {
    rt: tokio::runtime::Runtime,
    client: std::sync::OnceLock<aws_sdk_s3::Client>,
}

/// `s3://BUCKET/PREFIX` → (bucket, prefix); `None` for anything else.
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
}

impl S3 {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("s3")
                .enable_all()
                .build()?,
            client: std::sync::OnceLock::new(),
        })
    }

    fn client(&self) -> aws_sdk_s3::Client {
        self.client
            .get_or_init(|| {
                let sdk = self
                    .rt
                    .block_on(crate::aws_config::api::load_sdk_config(None, None, None, 5));
                // Path-style addressing when the endpoint is overridden (MinIO,
                // moto, a VPC endpoint by IP): virtual hosts need DNS for the bucket.
                let path_style = sdk.endpoint_url().is_some();
                let conf = aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }

    /// Every object under `prefix`, page by page.
    pub fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<S3Object>, String> {
        let client = self.client();
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .rt
                .block_on(
                    client
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .set_continuation_token(token)
                        .send(),
                )
                .map_err(|e| {
                    format!(
                        "ListObjectsV2: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(S3Object {
                    key: key.to_string(),
                    stamp: format!("{}|{:?}", o.e_tag().unwrap_or(""), o.last_modified()),
                    size: o.size().unwrap_or(0).max(0) as u64,
                });
            }
            token = page.next_continuation_token().map(String::from);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// An object's bytes, and the version it was when read.
    pub fn get(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, Option<String>), String> {
        let client = self.client();
        let r = self.rt.block_on(async {
            let o = client.get_object().bucket(bucket).key(key).send().await?;
            let version = o.version_id().map(String::from);
            let body = o.body.collect().await.map(|b| b.into_bytes().to_vec());
            Ok::<_, aws_sdk_s3::error::SdkError<_>>((body, version))
        });
        match r {
            Ok((Ok(bytes), version)) => Ok((bytes, version)),
            Ok((Err(e), _)) => Err(format!("reading the object: {e}")),
            Err(e) => Err(format!(
                "GetObject: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_parse() {
        assert_eq!(
            super::parse_url("s3://b/exports/focus/"),
            Some(("b".into(), "exports/focus/".into()))
        );
        assert_eq!(
            super::parse_url("s3://b"),
            Some(("b".into(), String::new()))
        );
        assert_eq!(super::parse_url("s3:///x"), None);
        assert_eq!(super::parse_url("/tmp/x"), None);
    }
}
