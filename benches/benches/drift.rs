//! Micro-benchmarks of the drift path's hot loops: loading a state file
//! and an AWS Config snapshot, and the DataFusion join + diff, on a
//! generated estate of 10 000 resources.
//!
//! cargo bench -p driftline-benches --bench drift

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::prelude::SessionContext;
use driftline_collectors::aws_config;
use driftline_collectors::terraform::{Salt, TerraformConfig, load_state};
use driftline_detectors::{DriftDetector, DriftIgnore, Mappings, register_snapshots};

const N: usize = 10_000;

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("driftline-criterion-{}", std::process::id()));
    let g = driftline_benches::generate(&dir, N).expect("generate");
    let mappings = Arc::new(Mappings::builtin().expect("mappings"));
    let types = Arc::new(mappings.type_table());
    let cfg = TerraformConfig::new(types.clone(), Salt::new("b"));

    let mut group = c.benchmark_group("load");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("terraform_state", |b| {
        b.iter(|| {
            load_state(&g.state_files[0], &cfg)
                .expect("state")
                .resources
                .len()
        })
    });
    group.bench_function("aws_config_snapshot", |b| {
        b.iter(|| {
            aws_config::load_file(&g.observed_files[0], &types)
                .expect("items")
                .items
                .len()
        })
    });
    group.finish();

    let declared = load_state(&g.state_files[0], &cfg)
        .expect("state")
        .resources;
    let observed = aws_config::load_file(&g.observed_files[0], &types)
        .expect("items")
        .items;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(2 * N as u64));
    group.sample_size(10);
    group.bench_function("drift_join_and_diff", |b| {
        b.iter(|| {
            rt.block_on(async {
                let ctx = SessionContext::new();
                let summary =
                    register_snapshots(&ctx, &mappings, &declared, &observed).expect("register");
                DriftDetector::new(mappings.clone(), DriftIgnore::default())
                    .run(&ctx, summary)
                    .await
                    .expect("run")
                    .findings
                    .len()
            })
        })
    });
    group.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
