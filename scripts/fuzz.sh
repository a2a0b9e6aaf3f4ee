#!/usr/bin/env bash
# Runs every fuzz target (fuzz/libfuzzer, cargo-fuzz + libFuzzer) for a
# number of executions each, then prints the table README's "Reliability"
# section keeps. Long: not part of the test command or CI.
#
#   scripts/fuzz.sh                 # 1 000 000 executions of every target
#   scripts/fuzz.sh 200000 promql   # fewer, of some targets
#
# Corpora grow in ~/.cache/driftline/fuzz/corpus/<target>, seeded from
# fuzz/seeds, fuzz/regressions, the real-world fixtures and the messages
# driftline writes on the bus. A crash stops that target's run; its input
# is left in ~/.cache/driftline/fuzz/crashes/<target>/. Once fixed, copy it
# to fuzz/regressions/<target>/ so the test command replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
runs="${1:-1000000}"
shift || true

cache="$HOME/.cache/driftline"
work="$cache/fuzz"
mkdir -p "$work"
export PATH="$cache/cargo-fuzz/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz --root "$cache/cargo-fuzz"
fi
command -v c++ >/dev/null 2>&1 || apt-get install -y -qq g++ # libFuzzer is C++

# cargo-fuzz passes rustc flags that stable accepts only in bootstrap mode;
# this machine has one toolchain, a stable one.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$work/target"
fuzz_dir="$root/fuzz/libfuzzer"

if (($# == 0)); then
  set -- $(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v '^driftline')
fi

echo "== seeds"
fixtures="${DRIFTLINE_FIXTURES:-$root/../shared/fixtures}"
seeds="$work/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
# In the test command's build, with its features and without bootstrap mode, so it
# is built once for both.
env -u RUSTC_BOOTSTRAP DRIFTLINE_FUZZ_SEEDS="$seeds" CARGO_TARGET_DIR="$cache/target" \
  cargo test -q --workspace --all-features --test bus_seeds --test parquet_seed >/dev/null
for t in "$@"; do
  mkdir -p "$work/corpus/$t" "$seeds/$t"
  for kept in "$root/fuzz/seeds/$t" "$root/fuzz/regressions/$t"; do
    [ -d "$kept" ] && cp -r "$kept/." "$seeds/$t/"
  done
done
if [ -d "$fixtures" ]; then
  [ -d "$seeds/terraform_state" ] && find "$fixtures/tfstate" "$fixtures/pairs" -name '*.tfstate*' -size -1M \
    -exec cp {} "$seeds/terraform_state/" \; 2>/dev/null || true
  [ -d "$seeds/aws_config_items" ] && find "$fixtures/awsconfig" "$fixtures/pairs" -name '*.json' -size -1M \
    -exec cp {} "$seeds/aws_config_items/" \; 2>/dev/null || true
fi

echo "== build"
# The targets build against the versions the workspace is tested with.
cp "$root/Cargo.lock" "$fuzz_dir/Cargo.lock"
for t in "$@"; do
  cargo fuzz build --fuzz-dir "$fuzz_dir" --release --debug-assertions --sanitizer none "$t"
done

report="$work/report.tsv"
: >"$report"
# One target a core at once (FUZZ_JOBS to change it).
jobs="${FUZZ_JOBS:-$(nproc)}"
run_one() {
  local t="$1"
  mkdir -p "$work/crashes/$t"
  local log="$work/$t.log" status=0
  echo "== $t: $runs executions (log $log)"
  cargo fuzz run --fuzz-dir "$fuzz_dir" --release --debug-assertions --sanitizer none "$t" \
    "$work/corpus/$t" "$seeds/$t" -- \
    -runs="$runs" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
    -artifact_prefix="$work/crashes/$t/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  local execs crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$work/crashes/$t" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\n' "$t" "${execs:-?}" "$crashes" "$status" >>"$report"
}
export -f run_one
export work runs fuzz_dir seeds report
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}

echo "== report (target, executions, crash inputs kept, exit status)"
sort "$report" | column -t
