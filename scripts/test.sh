#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust installed.
# Installs what the tests need (deploy/local/test-stack.sh: librdkafka's
# build needs, promtool, the tansu Kafka broker — cached outside the clone),
# starts the broker, checks formatting and lints, runs every test with the
# Kafka bus compiled in, and stops the broker.
#
#   ./scripts/test.sh              # everything, peers included
#   ./scripts/test.sh --no-stack   # without installing or starting peers (no
#                                  # root here, say): tests that need one say
#                                  # SKIPPED and the summary counts them; under
#                                  # CI=true they fail instead
set -euo pipefail
cd "$(dirname "$0")/.."
stack_wanted=1
if [ "${1:-}" = "--no-stack" ]; then
  stack_wanted=0
fi

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

stack="$(mktemp -d)"
# Tests that could not reach their peer write themselves here.
export DRIFTLINE_SKIP_LOG="$stack/skipped.txt"
cleanup() {
  ./deploy/local/test-stack.sh stop "$stack"
  rm -rf "$stack"
  rm -f "${log:-}"
}
trap cleanup EXIT
if [ "$stack_wanted" = 1 ]; then
  echo "== test stack"
  ./deploy/local/test-stack.sh install
  eval "$(./deploy/local/test-stack.sh start "$stack")"
else
  echo "== no test stack (--no-stack): tests that need a peer are skipped and counted"
fi

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
# What could not run, and why; then one closing line for the whole suite,
# summed over every test binary.
skipped=0
if [ -s "$DRIFTLINE_SKIP_LOG" ]; then
  skipped=$(sort -u "$DRIFTLINE_SKIP_LOG" | wc -l)
  echo "== could not run (no peer; they passed without checking anything):"
  sort -u "$DRIFTLINE_SKIP_LOG" | sed 's/^/  /'
fi
awk -v skipped="$skipped" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { if (skipped > 0) printf "%d passed, %d failed, %d skipped\n", p - skipped, f, skipped; else printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
