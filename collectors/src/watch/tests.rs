use super::*;
use crate::terraform::Salt;
use driftline_pipeline::Collected;
use serde_json::Value;

fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/estate")
}

fn state_watcher(dir: &Path) -> WatchCollector {
    let types = Arc::new(TypeTable::default());
    WatchCollector::new(WatchConfig {
        paths: vec![dir.to_path_buf()],
        remote: Vec::new(),
        remote_interval: Duration::ZERO,
        source: WatchSource::State(Box::new(TerraformConfig::new(
            types,
            Salt::from_env_or_random(),
        ))),
        interval: Duration::from_millis(10),
    })
}

fn keys(records: &[Record]) -> Vec<String> {
    let mut k: Vec<String> = records
        .iter()
        .map(|r| match r {
            Record::Declared(d) => driftline_pipeline::codec::declared_key(d).0,
            Record::Observed(o) => o.resource_key.clone(),
            Record::Deleted { key } => format!("deleted:{key}"),
            Record::DeadLetter(d) => format!("dead:{}", d.source),
            Record::Status(s) => format!("status:{}:{}", s.source, s.up),
            Record::Metrics(m) => format!("metrics:{}", m.source),
            Record::Logs(l) => format!("logs:{}", l.source),
        })
        .collect();
    k.sort();
    k
}

/// What was published on `topic`: (snapshots and tombstones, statuses).
fn drain(out: &Collected, topic: Topic) -> (Vec<Record>, Vec<SourceStatus>) {
    let mut snapshots = Vec::new();
    let mut statuses = Vec::new();
    for r in out.drain(topic) {
        match r {
            Record::Status(s) => statuses.push(*s),
            other => snapshots.push(other),
        }
    }
    (snapshots, statuses)
}

/// Rewrites a file with a new modification time even within one clock tick.
fn write_later(path: &Path, text: &str) {
    let before = path.metadata().ok().and_then(|m| m.modified().ok());
    std::fs::write(path, text).unwrap();
    if let Some(b) = before {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(b + Duration::from_secs(1)).unwrap();
    }
}

#[test]
fn publishes_changes_only_and_tombstones_what_vanished() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("terraform.tfstate");
    let text = std::fs::read_to_string(estate().join("terraform/terraform.tfstate")).unwrap();
    std::fs::write(&file, &text).unwrap();
    let mut w = state_watcher(dir.path());
    let out = Collected::new();

    let r = w.poll_once(&out);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let (first, statuses) = drain(&out, Topic::Declared);
    assert!(first.len() > 10);
    assert_eq!(r.published, first.len());
    // The folder is read: one up status for it, after the snapshots.
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert!(statuses[0].up && statuses[0].source == dir.path().display().to_string());

    // Nothing changed: nothing published, not even the status again.
    assert_eq!(w.poll_once(&out).published, 0);
    assert!(out.drain(Topic::Declared).is_empty());

    // Drop the first resource's instances, change one attribute elsewhere.
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let resources = doc["resources"].as_array_mut().unwrap();
    let removed = resources.remove(0);
    let removed_n = removed["instances"].as_array().unwrap().len();
    let last = resources.last_mut().unwrap();
    last["instances"][0]["attributes"]["tags"]["Owner"] = Value::from("someone-else");
    write_later(&file, &serde_json::to_string_pretty(&doc).unwrap());

    w.poll_once(&out);
    let second = keys(&out.drain(Topic::Declared));
    assert_eq!(second.len(), removed_n + 1, "{second:?}");
    let deleted = second.iter().filter(|k| k.starts_with("deleted:")).count();
    assert_eq!(deleted, removed_n, "{second:?}");

    // A half-written file keeps the previous records and is reported once;
    // its folder's status says it is down, naming the file, and stale (its
    // last version is kept).
    write_later(&file, "{\"version\": 4, \"resources\": [");
    let r = w.poll_once(&out);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].source.ends_with("terraform.tfstate"));
    let dead = out.drain(Topic::DeadLetters);
    assert_eq!(dead.len(), 1);
    // Caught half-written: quiet for a couple of passes (it is usually
    // rewritten by then), then reported.
    let (snapshots, statuses) = drain(&out, Topic::Declared);
    assert!(snapshots.is_empty() && statuses.is_empty(), "{statuses:?}");
    assert!(w.poll_once(&out).errors.is_empty(), "reported once");
    assert!(out.drain(Topic::Declared).is_empty());
    w.poll_once(&out);
    let (snapshots, statuses) = drain(&out, Topic::Declared);
    assert!(snapshots.is_empty());
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert!(!statuses[0].up && statuses[0].is_stale(), "{statuses:?}");
    assert_eq!(statuses[0].source, dir.path().display().to_string());
    let reason = statuses[0].reason.as_deref().unwrap();
    assert!(
        reason.starts_with(&format!("unreadable: {}: ", file.display())),
        "{reason}"
    );
    assert!(w.poll_once(&out).errors.is_empty());
    assert!(out.drain(Topic::Declared).is_empty(), "reported once");

    // Fixed: the folder is up again, under the same key (a restarted
    // collector's first pass overwrites it the same way).
    write_later(&file, &serde_json::to_string_pretty(&doc).unwrap());
    w.poll_once(&out);
    let (snapshots, statuses) = drain(&out, Topic::Declared);
    assert!(snapshots.is_empty(), "{:?}", keys(&snapshots));
    assert!(statuses.len() == 1 && statuses[0].up, "{statuses:?}");
    assert_eq!(statuses[0].source, dir.path().display().to_string());

    // The folder cannot be listed (unmounted, say): its records stay, and
    // it is down.
    let moved = dir.path().with_extension("moved");
    std::fs::rename(dir.path(), &moved).unwrap();
    let r = w.poll_once(&out);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let (snapshots, statuses) = drain(&out, Topic::Declared);
    assert!(
        snapshots.is_empty(),
        "nothing tombstoned: {:?}",
        keys(&snapshots)
    );
    assert!(statuses.len() == 1 && !statuses[0].up && statuses[0].is_stale());
    std::fs::rename(&moved, dir.path()).unwrap();
    w.poll_once(&out);
    let (snapshots, statuses) = drain(&out, Topic::Declared);
    assert!(snapshots.is_empty());
    assert!(statuses.len() == 1 && statuses[0].up, "{statuses:?}");

    // The file goes away: every resource it held is tombstoned.
    std::fs::remove_file(&file).unwrap();
    w.poll_once(&out);
    let gone = keys(&out.drain(Topic::Declared));
    assert_eq!(gone.len(), first.len() - removed_n);
    assert!(gone.iter().all(|k| k.starts_with("deleted:")));
}
