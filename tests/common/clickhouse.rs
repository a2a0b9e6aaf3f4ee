//! A ClickHouse server of a test's own, which the test may stop, kill and
//! start again on the same data and ports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{http_get, no_peer, wait_for};

/// A ClickHouse server of this test's own (it is stopped and started).
pub struct Server {
    dir: PathBuf,
    pub url: String,
    /// The server as restarted by the test (the first one belongs to the
    /// script that started it).
    restarted: Option<std::process::Child>,
}

impl Server {
    pub fn start(dir: &Path) -> Option<Server> {
        if std::env::var("DRIFTLINE_TEST_CLICKHOUSE").is_err() {
            no_peer("no ClickHouse server", "deploy/local/test-stack.sh");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/test-stack.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("clickhouse")
            .arg(dir.join("ch"))
            .output()
            .unwrap();
        let out = super::succeeded(out);
        let url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("export DRIFTLINE_TEST_CLICKHOUSE="))
            .unwrap()
            .to_string();
        Some(Server {
            dir: dir.to_path_buf(),
            url,
            restarted: None,
        })
    }

    pub fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.join("clickhouse.pid"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn up(&self) -> bool {
        let addr = self.url.trim_start_matches("http://");
        http_get(addr, "/ping").is_ok_and(|(s, _)| s == 200)
    }

    pub fn stop(&self) {
        self.signal("-TERM");
    }

    /// SIGKILL: no shutdown at all, whatever it was doing.
    pub fn kill(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([signal, &self.pid()])
            .status();
        wait_for(60, "ClickHouse to stop", || !self.up());
    }

    /// The same server again: its data directory, its ports.
    pub fn restart(&mut self) {
        // The server killed before was started by this test: reap it.
        if let Some(mut old) = self.restarted.take() {
            let _ = old.wait();
        }
        let config = self.dir.join("ch/config.xml");
        let child = std::process::Command::new("clickhouse-server")
            .arg(format!("--config-file={}", config.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(self.dir.join("clickhouse.pid"), child.id().to_string()).unwrap();
        self.restarted = Some(child);
        wait_for(60, "ClickHouse to start again", || self.up());
    }

    /// `sql`'s answer as tab-separated text (empty when the server fails).
    pub fn query(&self, sql: &str) -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-sf",
                "--data-binary",
                &format!("{sql} FORMAT TabSeparated"),
                &self.url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Each finding event in the store: (fingerprint, event, timestamp) → copies.
    pub fn events(&self) -> BTreeMap<(String, String, String), usize> {
        let out = self.query("SELECT fingerprint, event, timestamp FROM finding_events");
        let mut seen = BTreeMap::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if let [fp, ev, ts] = f.as_slice() {
                *seen
                    .entry((fp.to_string(), ev.to_string(), ts.to_string()))
                    .or_default() += 1;
            }
        }
        seen
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg(self.pid()).status();
        if let Some(mut child) = self.restarted.take() {
            let _ = child.wait();
        }
    }
}
