//! `driftline run`'s HTTP API held to its OpenAPI document
//! (`src/service/openapi.yaml`) by schemathesis, a property-based tester:
//! generated requests, valid and not, against every endpoint, bounded in
//! examples and time. No 5xx, every answer as documented, and every
//! request that needs the token refused with 401 without it.

mod common;

use common::*;

const TOKEN: &str = "api-token-for-schemathesis";
/// The cases CI explores.
const CI_SEED: &str = "20261206";

#[test]
fn the_http_api_answers_as_its_openapi_document_says() {
    let Ok(schemathesis) = std::env::var("DRIFTLINE_TEST_SCHEMATHESIS") else {
        no_peer("no schemathesis", "deploy/local/test-stack.sh");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("driftline.toml");
    std::fs::write(
        &cfg,
        "[aws_config.notifications]\nenabled = true\ntoken_env = \"DRIFTLINE_API_TOKEN\"\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let svc = Service::start_env(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &tmp.path().join("findings.jsonl"),
        &tmp.path().join("run.log"),
        &[("DRIFTLINE_API_TOKEN", TOKEN)],
    );
    wait_for(30, "/readyz", || {
        http_get(&svc.listen, "/readyz").is_ok_and(|(c, _)| c == 200)
    });
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/service/openapi.yaml");
    // CI explores the same cases every run, so a red run is a change's
    // doing; a run outside CI draws new ones (or repeats a seed it is given).
    let seed = std::env::var("DRIFTLINE_SCHEMATHESIS_SEED")
        .ok()
        .or_else(|| std::env::var("CI").is_ok().then(|| CI_SEED.to_string()))
        .unwrap_or_else(|| fastrand::u32(..).to_string());
    let out = std::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(spec.with_file_name("schemathesis.toml"))
        .args(["--no-color", "run"])
        .arg(&spec)
        .args(["--url", &format!("http://{}", svc.listen)])
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--max-examples", "25", "--max-time", "90", "--workers", "2"])
        .args(["--seed", &seed])
        .args(["--request-timeout", "10", "--max-response-time", "10"])
        .args(["--phases", "examples,coverage,fuzzing"])
        // Its reports and replay files land beside it: keep them out of the clone.
        .current_dir(tmp.path())
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            spec.parent().unwrap().join("../../tests/support"),
        )
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Still alive after all that.
    let (health, _) = http_get(&svc.listen, "/healthz").unwrap();
    let log = std::fs::read_to_string(&svc.log).unwrap_or_default();
    assert_eq!(health, 200, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(TOKEN), "the token is never logged");
    let status = svc.stop();
    assert!(
        out.status.success(),
        "schemathesis found problems (DRIFTLINE_SCHEMATHESIS_SEED={seed} repeats the run):\n{report}"
    );
    assert!(status.success(), "{status:?}");
}
