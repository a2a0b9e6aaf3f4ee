//! A real Prometheus (Debian's 2.42) for the telemetry tests: scraping
//! itself, remote-writing to driftline, or receiving remote-write itself.

use std::process::{Child, Command, Stdio};

use super::{free_port, http_get, no_peer, wait_for};

pub struct Prometheus {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
            eprintln!(
                "--- prometheus.log (tail) ---\n{}",
                &log[log.len().saturating_sub(3000)..]
            );
        }
    }
}

/// The binary, or `None` (after `no_peer`) when it is not installed.
pub fn binary() -> Option<String> {
    let bin = std::env::var("DRIFTLINE_TEST_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    if Command::new(&bin).arg("--version").output().is_err() {
        no_peer(
            &format!("no Prometheus ({bin} is not installed)"),
            "./scripts/test.sh",
        );
        return None;
    }
    Some(bin)
}

/// Starts Prometheus on `addr` (a free port when `None`) with `config`
/// (YAML; `{addr}` is replaced by its own address) and `extra` flags;
/// waits until it is ready.
pub fn start(addr: Option<String>, config: &str, extra: &[&str]) -> Option<Prometheus> {
    let bin = binary()?;
    let dir = tempfile::tempdir().unwrap();
    let addr = addr.unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
    std::fs::write(
        dir.path().join("prometheus.yml"),
        config.replace("{addr}", &addr),
    )
    .unwrap();
    let child = Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus starts");
    let p = Prometheus { child, addr, dir };
    wait_for(30, "Prometheus to be ready", || {
        http_get(&p.addr, "/-/ready").is_ok_and(|(c, _)| c == 200)
    });
    Some(p)
}

impl Prometheus {
    /// An instant query's result vector.
    pub fn query(&self, promql: &str, at_ms: i64) -> Vec<serde_json::Value> {
        let q: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let path = format!(
            "/api/v1/query?query={q}&time={}.{:03}",
            at_ms / 1000,
            at_ms % 1000
        );
        let (code, body) = http_get(&self.addr, &path).unwrap();
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}
