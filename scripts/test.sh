#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust installed.
# Installs what the tests need (deploy/local/test-stack.sh: librdkafka's
# build needs, promtool, the tansu Kafka broker — cached outside the clone),
# starts the broker, checks formatting and lints, runs every test with the
# Kafka bus compiled in, and stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftline/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== test stack"
./deploy/local/test-stack.sh install
stack="$(mktemp -d)"
eval "$(./deploy/local/test-stack.sh start "$stack")"
cleanup() {
  ./deploy/local/test-stack.sh stop "$stack"
  rm -rf "$stack"
  rm -f "${log:-}"
}
trap cleanup EXIT

# The real-world fixtures live beside the clone (../shared/fixtures).
fixtures="${DRIFTLINE_FIXTURES:-$(pwd)/../shared/fixtures}"
if [ ! -d "$fixtures" ]; then
  echo "fixtures folder $fixtures is missing (set DRIFTLINE_FIXTURES)" >&2
  exit 1
fi
export DRIFTLINE_FIXTURES="$fixtures"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "== cargo test"
log="$(mktemp)"
set +e
cargo test --workspace --all-features --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
