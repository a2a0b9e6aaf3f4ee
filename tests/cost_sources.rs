//! Where cost exports come from: an `s3://` prefix (moto) for
//! `driftline cost import`, and a folder `driftline run` watches; an export
//! the store holds already is not loaded twice.

#[path = "common/aws.rs"]
mod aws;
mod common;

use common::finops::{demo_export, repo};

#[test]
fn cost_import_reads_an_s3_prefix_once() {
    let Some(moto) = aws::Moto::get() else { return };
    let region = "eu-north-1";
    moto.bucket(region, "dl-cost-exports", &[]);
    let csv = std::fs::read_to_string(demo_export()).unwrap();
    let key = "focus/2024-09/focus-2024-09.csv";
    moto.put_object(region, "dl-cost-exports", key, &csv);
    // Not an export: listed, never read.
    moto.put_object(region, "dl-cost-exports", "focus/manifest.json", "{}");
    let data = tempfile::tempdir().unwrap();
    let import = || {
        common::driftline()
            .args([
                "cost",
                "import",
                "s3://dl-cost-exports/focus/",
                "--data-dir",
            ])
            .arg(data.path())
            .envs(moto.env(region))
            .output()
            .unwrap()
    };
    let first = import();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success() && out.contains("imported 630 cost rows"),
        "{out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = import();
    let (out, err) = (
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr),
    );
    assert!(out.contains("imported 0 cost rows"), "{out}{err}");
    assert!(err.contains("1 export(s) already imported"), "{err}");
    assert_eq!(
        common::count_in(
            data.path(),
            &format!(
                "SELECT COUNT(*) AS n FROM focus_data_table \
                 WHERE x_SourceFile = 's3://dl-cost-exports/{key}'"
            )
        ),
        630
    );
    // The secret key the peer was reached with is nowhere in the store.
    let stored = std::process::Command::new("grep")
        .args(["-rl", aws::SECRET_KEY])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(stored.stdout.is_empty());
}

#[test]
fn run_loads_each_new_export_in_a_watched_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let exports = tmp.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let estate = repo().join("examples/estate");
    let config = tmp.path().join("driftline.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[watch]\nstate = [\"{}\"]\nobserved = [\"{}\"]\n\
             cost = [\"exports\"]\ncost_interval_secs = 1\n",
            estate.join("terraform").display(),
            estate.join("aws-config").display(),
        ),
    )
    .unwrap();
    let svc = common::Service::start(
        &["--config", config.to_str().unwrap()],
        &tmp.path().join("findings.jsonl"),
        &tmp.path().join("run.log"),
    );
    let data = tmp.path().join("data");
    let rows = || common::count_in(&data, "SELECT COUNT(*) AS n FROM focus_data_table");
    std::fs::copy(demo_export(), exports.join("focus-2024-09.csv")).unwrap();
    common::wait_for(30, "the first export to load", || rows() == 630);
    // A second delivery, under a new name: loaded; the first is not again.
    std::fs::copy(demo_export(), exports.join("focus-2024-09-r2.csv")).unwrap();
    common::wait_for(30, "the second export to load", || rows() == 1260);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(rows(), 1260);
    let status = svc.stop();
    assert!(status.success(), "{status:?}");
}
