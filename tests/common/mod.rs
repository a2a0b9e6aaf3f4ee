//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod clickhouse;
pub mod dashboards;
pub mod finops;
pub mod ops;
pub mod prometheus;

use std::path::PathBuf;

/// A finished command's output, after checking it succeeded (its stderr
/// is the failure message).
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `driftline sql --output json QUERY STORE_ARGS…`: the rows.
pub fn sql_rows(store_args: &[String], query: &str) -> Vec<serde_json::Value> {
    let out = succeeded(
        driftline()
            .args(["sql", query, "--output", "json"])
            .args(store_args)
            .output()
            .unwrap(),
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

/// The `n` column of a query's first row, on the Parquet store in `dir`.
pub fn count_in(dir: &std::path::Path, query: &str) -> i64 {
    sql_rows(&["--data-dir".into(), dir.display().to_string()], query)[0]["n"]
        .as_i64()
        .unwrap()
}

/// `../shared/fixtures` beside the checkout (or `DRIFTLINE_FIXTURES`).
/// The real-world fixtures are required: a missing folder fails the test.
pub fn fixtures() -> PathBuf {
    let p = std::env::var("DRIFTLINE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    assert!(
        p.is_dir(),
        "fixtures folder {} is missing (set DRIFTLINE_FIXTURES)",
        p.display()
    );
    p
}

/// This test's peer (`what`, e.g. "no Kafka broker") is not here. Under CI
/// that fails the test (`provided_by` says what should have provided it);
/// elsewhere the test says SKIPPED and is written to `DRIFTLINE_SKIP_LOG`,
/// which the test command's summary counts, so nothing passes silently.
pub fn no_peer(what: &str, provided_by: &str) {
    assert!(
        std::env::var("CI").is_err(),
        "{what}: {provided_by} provides it"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    eprintln!("SKIPPED: {test}: {what} ({provided_by} provides it)");
    if let Ok(log) = std::env::var("DRIFTLINE_SKIP_LOG") {
        use std::io::Write;
        let line = format!("{}: {test}: {what}\n", env!("CARGO_CRATE_NAME"));
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

pub fn estate() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/estate")
}

/// Rows of a TSV file as maps from header to cell.
pub fn tsv(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

/// `instances=15 managed=15 …` → the number after `key=`.
pub fn note_count(notes: &str, key: &str) -> Option<usize> {
    notes
        .split([' ', ',', '|'])
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|n| n.parse().ok())
}

pub fn driftline() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_driftline"));
    c.env_remove("RUST_LOG")
        .env("DRIFTLINE_HASH_SALT", "test-salt");
    // A log filter for chasing a failure (tests read the `info` lines).
    if let Ok(filter) = std::env::var("DRIFTLINE_TEST_RUST_LOG") {
        c.env("RUST_LOG", filter);
    }
    c
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP GET; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http(addr, "GET", path, None)
}

/// A plain HTTP POST of JSON; returns (status, body).
pub fn http_post(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
) -> std::io::Result<(u16, String)> {
    http(addr, "POST", path, Some(body))
}

fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A POST of raw bytes with extra headers; returns (status, the response
/// head, body).
pub fn http_post_bytes(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status, head.to_string(), body.to_string()))
}

/// `promtool check metrics` on an exposition: no lint findings.
pub fn promtool_check(metrics: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            no_peer(
                &format!("promtool is not installed ({e})"),
                "deploy/local/test-stack.sh install",
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "promtool check metrics:\n{text}"
    );
}

/// Copies a folder tree.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A running `driftline run`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Service {
    pub child: std::process::Child,
    pub listen: String,
    pub findings: PathBuf,
    pub log: PathBuf,
}

impl Service {
    /// Starts `driftline run ARGS --listen … --findings-out FINDINGS`.
    pub fn start(args: &[&str], findings: &std::path::Path, log: &std::path::Path) -> Self {
        Self::start_env(args, findings, log, &[])
    }

    /// `start`, with extra environment variables (secrets).
    pub fn start_env(
        args: &[&str],
        findings: &std::path::Path,
        log: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut cmd = driftline();
        cmd.envs(env.iter().copied());
        let child = cmd
            .args(["--log-level", "info", "run"])
            .args(args)
            .args(["--listen", &listen, "--findings-out"])
            .arg(findings)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("driftline starts");
        Service {
            child,
            listen,
            findings: findings.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    /// `start` with the findings and log files in `dir`, once `/healthz`
    /// answers.
    pub fn start_ready(args: &[&str], dir: &std::path::Path) -> Self {
        let svc = Self::start(args, &dir.join("findings.jsonl"), &dir.join("run.log"));
        wait_for(20, "the listener", || {
            http_get(&svc.listen, "/healthz").is_ok_and(|(c, _)| c == 200)
        });
        svc
    }

    pub fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "driftline did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The service's own account of what happened, for the failure report.
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            // On a character's boundary: a panic here, while panicking,
            // would abort the whole test binary.
            let mut from = text.len().saturating_sub(6000);
            while !text.is_char_boundary(from) {
                from += 1;
            }
            let tail = &text[from..];
            eprintln!("--- {} (tail) ---\n{tail}", self.log.display());
            // The whole log outlives the test's temporary folder when asked.
            if let Some(dir) = kept_after_failure() {
                let name = std::thread::current()
                    .name()
                    .unwrap_or("test")
                    .replace("::", "-");
                let file = self.log.file_name().unwrap_or_default().to_string_lossy();
                let kept = dir.join(format!("{name}-{}-{file}", std::process::id()));
                if std::fs::write(&kept, &text).is_ok() {
                    eprintln!("--- the whole log: {} ---", kept.display());
                }
            }
        }
    }
}

/// Where a failing test keeps what it would otherwise delete (its logs,
/// a broker's files): `DRIFTLINE_KEEP_LOGS`, while the test panics.
pub fn kept_after_failure() -> Option<PathBuf> {
    std::env::var_os("DRIFTLINE_KEEP_LOGS")
        .filter(|_| std::thread::panicking())
        .map(PathBuf::from)
}

/// `driftline run` watching a copy of the example estate (`estate`), with
/// its data, findings (`findings.jsonl`) and log under `dir`.
pub fn run_on_estate(estate: &std::path::Path, dir: &std::path::Path) -> Service {
    let arg = |p: PathBuf| p.display().to_string();
    Service::start(
        &[
            "--watch-state",
            &arg(estate.join("terraform")),
            "--watch-observed",
            &arg(estate.join("aws-config")),
            "--driftignore",
            &arg(estate.join(".driftignore")),
            "--data-dir",
            &arg(dir.join("data")),
        ],
        &dir.join("findings.jsonl"),
        &dir.join("run.log"),
    )
}

/// The finding events in a JSON-lines file, one JSON value each.
pub fn finding_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `f` holds, up to `secs` seconds; panics with `what` otherwise.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Open findings after replaying events: fingerprint → last event.
pub fn open_after(
    events: &[serde_json::Value],
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut open = std::collections::BTreeMap::new();
    for e in events {
        let fp = e["fingerprint"].as_str().unwrap_or_default().to_string();
        if e["event"] == "resolved" {
            open.remove(&fp);
        } else {
            open.insert(fp, e.clone());
        }
    }
    open
}

/// The bucket in the example estate that no state manages.
pub const UNMANAGED_BUCKET: &str = "acme-prod-exports-tmp";

/// Removes one configuration item from an AWS Config snapshot file (the
/// resource is gone from the cloud); returns the file's previous text.
pub fn drop_observed_item(snapshot: &std::path::Path, resource_id: &str) -> String {
    let original = std::fs::read_to_string(snapshot).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    let items = doc["configurationItems"].as_array_mut().unwrap();
    let before = items.len();
    items.retain(|i| i["resourceId"] != resource_id);
    assert_eq!(
        items.len(),
        before - 1,
        "{resource_id} is in {}",
        snapshot.display()
    );
    std::fs::write(snapshot, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    original
}

/// Every file below `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
