//! The bus targets' best seeds are messages driftline itself wrote: the
//! example estate's records, encoded as the collectors publish them, run
//! through `bus_snapshot` here. `scripts/fuzz.sh` sets
//! `DRIFTLINE_FUZZ_SEEDS` to keep them as corpus seeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use driftline_collectors::aws_config;
use driftline_collectors::terraform::{Salt, TerraformConfig, load_state_bytes};
use driftline_detectors::Mappings;
use driftline_pipeline::{Record, Topic, codec};

fn example(path: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/estate");
    std::fs::read(root.join(path)).unwrap()
}

#[test]
fn the_messages_driftline_writes_read_back_through_the_bus_target() {
    let types = Arc::new(Mappings::builtin().unwrap().type_table());
    let cfg = TerraformConfig::new(types.clone(), Salt::new(b"seed".to_vec()));
    let state = load_state_bytes(&example("terraform/terraform.tfstate"), "state", &cfg).unwrap();
    let items =
        aws_config::load_bytes(&example("aws-config/snapshot.json"), "snap", &types).unwrap();
    let keep: Option<PathBuf> = std::env::var_os("DRIFTLINE_FUZZ_SEEDS").map(PathBuf::from);
    let run = |form: u8, records: Vec<Record>| {
        assert!(!records.is_empty());
        for (i, message) in codec::encode_records(Topic::Config, &records)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            let mut input = vec![form];
            input.extend(message.payload.unwrap());
            driftline_fuzz::run("bus_snapshot", &input);
            if let Some(dir) = &keep {
                let dir = dir.join("bus_snapshot");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("{form}-{i}.json")), &input).unwrap();
            }
        }
    };
    run(
        0,
        state
            .resources
            .into_iter()
            .map(|d| Record::Declared(Box::new(d)))
            .collect(),
    );
    run(
        1,
        items
            .items
            .into_iter()
            .map(|o| Record::Observed(Box::new(o)))
            .collect(),
    );
}
