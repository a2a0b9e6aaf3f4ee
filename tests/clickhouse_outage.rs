//! ClickHouse stopped for 60 s while `driftline run` keeps finding things:
//! the findings writer's batches wait on disk, and once the real server is
//! back every finding event is in `finding_events` exactly once.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::clickhouse::Server;
use common::*;

/// What the service wrote to its JSON-lines file, keyed as `Server::events`.
fn published(path: &Path) -> BTreeMap<(String, String, String), usize> {
    let mut seen = BTreeMap::new();
    for e in finding_events(path) {
        let key = (
            e["fingerprint"].as_str().unwrap_or_default().to_string(),
            e["event"].as_str().unwrap_or_default().to_string(),
            e["timestamp"].as_str().unwrap_or_default().to_string(),
        );
        *seen.entry(key).or_default() += 1;
    }
    seen
}

#[test]
fn sixty_seconds_without_clickhouse_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut server) = Server::start(tmp.path()) else {
        return;
    };
    let estate = tmp.path().join("estate");
    copy_dir(&common::estate(), &estate);
    let data = tmp.path().join("data");
    let config = tmp.path().join("driftline.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\
             [watch]\nstate = [{state:?}]\nobserved = [{observed:?}]\ninterval_ms = 200\n\
             [drift]\ndriftignore = {ignore:?}\n\
             [store]\nclickhouse = {url:?}\nmaintain_interval_secs = 1\n",
            state = estate.join("terraform"),
            observed = estate.join("aws-config"),
            ignore = estate.join(".driftignore"),
            url = server.url,
        ),
    )
    .unwrap();
    let findings = tmp.path().join("findings.jsonl");
    let svc = Service::start(
        &["--config", config.to_str().unwrap()],
        &findings,
        &tmp.path().join("run.log"),
    );
    let log = || std::fs::read_to_string(tmp.path().join("run.log")).unwrap_or_default();
    wait_for(60, "the first findings in ClickHouse", || {
        let p = published(&findings);
        !p.is_empty() && server.events() == p
    });
    let before = published(&findings).len();

    // ClickHouse goes away; the estate keeps changing.
    server.stop();
    let stopped = Instant::now();
    let snapshot = estate.join("aws-config/snapshot.json");
    drop_observed_item(&snapshot, UNMANAGED_BUCKET);
    drop_observed_item(&snapshot, "i-0web2a1b2c3d4e5f67");
    wait_for(30, "findings while ClickHouse is down", || {
        published(&findings).len() >= before + 2
    });
    wait_for(30, "batches waiting on disk", || {
        http_get(&svc.listen, "/metrics").is_ok_and(|(_, m)| {
            m.lines().any(|l| {
                l.starts_with("driftline_store_spool_batches{unit=\"batches\"}")
                    && !l.ends_with(" 0")
            })
        })
    });
    assert!(log().contains("ClickHouse unreachable"), "{}", log());
    let spool = data.join("clickhouse-spool");
    assert!(
        walk(&spool)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "spool")),
        "nothing spooled in {}",
        spool.display()
    );
    std::thread::sleep(Duration::from_secs(60).saturating_sub(stopped.elapsed()));

    // Back: everything once, nothing more.
    server.restart();
    wait_for(60, "every finding event in ClickHouse", || {
        server.events() == published(&findings)
    });
    let stored = server.events();
    assert!(stored.values().all(|&n| n == 1), "duplicates: {stored:?}");
    assert_eq!(stored.len(), published(&findings).len());
    assert!(stored.len() >= before + 2);
    // The finding events are the first batches replayed; the resource and
    // alert batches spooled after them follow in order.
    // The replay removes each batch's file as it lands and logs once after
    // the last: wait for both.
    wait_for(30, "the spool to drain and the replay to say so", || {
        !walk(&spool)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "spool"))
            && log().contains("spooled batches delivered")
    });
    assert!(svc.stop().success());
}
