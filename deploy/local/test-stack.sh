#!/usr/bin/env bash
# The local test stack (DESIGN §8), on 127.0.0.1 with free ports.
#   deploy/local/test-stack.sh install   # build prerequisites + the broker, cached
#   deploy/local/test-stack.sh start DIR # start the broker, moto and ClickHouse; prints `export` lines
#   deploy/local/test-stack.sh stop DIR  # stop what `start` started (by PID)
#   deploy/local/test-stack.sh clickhouse DIR  # one more ClickHouse server of a test's own (outage tests)
# Caches live under ${DRIFTLINE_CACHE:-$HOME/.cache/driftline}, outside the clone.
set -euo pipefail

CACHE="${DRIFTLINE_CACHE:-$HOME/.cache/driftline}"
TANSU_VERSION=0.6.0
TANSU="$CACHE/tansu/bin/tansu"
# The AWS API peer (Config, S3, IAM, SNS) and the SDK tests drive it with.
MOTO_VERSION=5.2.5
BOTO3_VERSION=1.44.5
# FOCUS cost data: realistic exports, and the specification's validator (its
# pandera needs a multimethod from before 1.11). Their own venv: pandas and
# pyarrow stay away from moto's.
FOCUS_TOOLKIT_VERSION=0.14.1
FOCUS_VALIDATOR_VERSION=1.0.0
# A current ClickHouse engine in process, to prove the DDL and queries that
# run on Debian's 18.16 server also run on today's releases.
CHDB_VERSION=26.9.2.1
# Grafana's own dashboard type, and the compiler that holds our dashboards to it.
GRAFANA_SCHEMA_VERSION=13.2.3
# A real OTLP collector (a Rust binary in the wheel): receives driftline's
# spans, and forwards OTLP into driftline.
ROTEL_VERSION=0.0.1a15
TYPESCRIPT_VERSION=7.0.2
# The property-based tester that holds the HTTP API to its OpenAPI document.
SCHEMATHESIS_VERSION=4.32.5

log() { echo "test-stack: $*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

install() {
  # librdkafka's cmake build needs cmake, a C++ compiler and the curl headers;
  # promtool checks the /metrics output.
  apt_install cmake g++ make libcurl4-openssl-dev libssl-dev pkg-config prometheus prometheus-alertmanager \
    clickhouse-server clickhouse-client
  # PyYAML lints the deploy manifests; Python tools live in a venv in the cache.
  if [ ! -x "$CACHE/venv/bin/python" ] || ! "$CACHE/venv/bin/python" -c 'import yaml' 2>/dev/null; then
    apt_install python3-venv
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q 'pyyaml==6.0.3'
  fi
  if ! "$CACHE/venv/bin/python" -c "import moto, boto3, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    log "installing moto $MOTO_VERSION into $CACHE/venv"
    "$CACHE/venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" "boto3==$BOTO3_VERSION"
  fi
  if ! "$CACHE/focus-venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('focus-data-toolkit') != '$FOCUS_TOOLKIT_VERSION' or m.version('focus_validator') != '$FOCUS_VALIDATOR_VERSION')" 2>/dev/null; then
    log "installing focus-data-toolkit $FOCUS_TOOLKIT_VERSION and focus-validator $FOCUS_VALIDATOR_VERSION into $CACHE/focus-venv"
    apt_install python3-venv
    python3 -m venv "$CACHE/focus-venv"
    "$CACHE/focus-venv/bin/pip" install -q "focus-data-toolkit==$FOCUS_TOOLKIT_VERSION" \
      "focus-validator==$FOCUS_VALIDATOR_VERSION" 'multimethod==1.10'
  fi
  if ! "$CACHE/chdb-venv/bin/python" -c "import chdb, sys; sys.exit(chdb.engine_version != '$CHDB_VERSION')" 2>/dev/null; then
    log "installing chdb-core (ClickHouse $CHDB_VERSION in process) into $CACHE/chdb-venv"
    apt_install python3-venv
    python3 -m venv "$CACHE/chdb-venv"
    "$CACHE/chdb-venv/bin/pip" install -q --no-deps chdb-core
  fi
  if ! "$CACHE/rotel-venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('rotel') != '$ROTEL_VERSION')" 2>/dev/null; then
    log "installing rotel $ROTEL_VERSION (OTLP collector) into $CACHE/rotel-venv"
    apt_install python3-venv
    python3 -m venv "$CACHE/rotel-venv"
    "$CACHE/rotel-venv/bin/pip" install -q "rotel==$ROTEL_VERSION"
  fi
  if ! "$CACHE/schemathesis-venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $CACHE/schemathesis-venv"
    apt_install python3-venv
    python3 -m venv "$CACHE/schemathesis-venv"
    "$CACHE/schemathesis-venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  if ! grep -qs "\"version\": \"$GRAFANA_SCHEMA_VERSION\"" "$CACHE/grafana-schema/node_modules/@grafana/schema/package.json" ||
    [ ! -x "$CACHE/grafana-schema/node_modules/.bin/tsc" ]; then
    log "installing @grafana/schema $GRAFANA_SCHEMA_VERSION and typescript $TYPESCRIPT_VERSION into $CACHE/grafana-schema"
    # Node.js's own packages carry npm; Debian splits it out.
    command -v npm >/dev/null || apt_install nodejs npm
    mkdir -p "$CACHE/grafana-schema"
    (cd "$CACHE/grafana-schema" && [ -f package.json ] || echo '{"private": true}' >package.json) &&
      (cd "$CACHE/grafana-schema" && npm install --silent --no-audit --no-fund \
        "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION" >&2)
  fi
  if [ ! -x "$TANSU" ]; then
    log "building tansu $TANSU_VERSION (once; 10-25 min cold) into $CACHE"
    mkdir -p "$CACHE"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore \
      --root "$CACHE/tansu" --target-dir "$CACHE/tansu-build" >&2
  fi
}

start() {
  local dir="$1"
  mkdir -p "$dir"
  local port
  port="$(free_port)"
  # tansu reads a sqlite URL's path relative to its working directory.
  (cd "$dir" && exec "$TANSU" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "sqlite://tansu.db" >"$dir/tansu.log" 2>&1) &
  echo $! >"$dir/tansu.pid"
  echo "$port" >"$dir/tansu.port"
  wait_port "$port" tansu "$dir/tansu.log"
  log "tansu broker on 127.0.0.1:$port (pid $(cat "$dir/tansu.pid"), log $dir/tansu.log)"
  echo "export DRIFTLINE_TEST_KAFKA=127.0.0.1:$port"
  echo "export DRIFTLINE_TEST_TANSU=$TANSU"
  echo "export DRIFTLINE_TEST_PYTHON=$CACHE/venv/bin/python"
  echo "export DRIFTLINE_TEST_FOCUS_BIN=$CACHE/focus-venv/bin"
  # moto, through the launcher that gives its Config answers AWS's shapes.
  local moto_port
  moto_port="$(free_port)"
  # Tests write refusals here (see moto_server.py), one region each.
  echo '[]' >"$dir/moto-faults.json"
  DRIFTLINE_MOTO_FAULTS="$dir/moto-faults.json" "$CACHE/venv/bin/python" "$(dirname "$0")/../../tests/support/moto_server.py" \
    -H 127.0.0.1 -p "$moto_port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  wait_port "$moto_port" moto "$dir/moto.log"
  log "moto on 127.0.0.1:$moto_port (pid $(cat "$dir/moto.pid"), log $dir/moto.log)"
  echo "export DRIFTLINE_TEST_MOTO=http://127.0.0.1:$moto_port"
  echo "export DRIFTLINE_TEST_MOTO_FAULTS=$dir/moto-faults.json"
  start_clickhouse "$dir/clickhouse"
  echo "export DRIFTLINE_TEST_CHDB_PYTHON=$CACHE/chdb-venv/bin/python"
  echo "export DRIFTLINE_TEST_GRAFANA_SCHEMA=$CACHE/grafana-schema"
  echo "export DRIFTLINE_TEST_SCHEMATHESIS=$CACHE/schemathesis-venv/bin/schemathesis"
  echo "export DRIFTLINE_TEST_ROTEL=$("$CACHE/rotel-venv/bin/python" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')"
}

# Debian's clickhouse-server 18.16 with everything under DIR; LowCardinality
# needs the experimental flag in the profile on this release.
start_clickhouse() {
  local dir="$1" http tcp
  mkdir -p "$dir"
  http="$(free_port)"
  tcp="$(free_port)"
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/error.log</errorlog><console>0</console></logger>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
  echo $! >"$(dirname "$dir")/clickhouse.pid"
  wait_port "$http" clickhouse "$dir/error.log"
  log "clickhouse-server on 127.0.0.1:$http (pid $(cat "$(dirname "$dir")/clickhouse.pid"), logs in $dir)"
  echo "export DRIFTLINE_TEST_CLICKHOUSE=http://127.0.0.1:$http"
  echo "export DRIFTLINE_TEST_CLICKHOUSE_CONFIG=$dir/config.xml"
  echo "export DRIFTLINE_TEST_CLICKHOUSE_TCP=$tcp"
}

wait_port() {
  local port="$1" name="$2" logfile="$3"
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "$name did not open port $port; its log:"
  cat "$logfile" >&2
  exit 1
}

stop() {
  local dir="$1" pid
  for name in tansu moto clickhouse; do
    if [ -f "$dir/$name.pid" ]; then
      pid="$(cat "$dir/$name.pid")"
      kill "$pid" 2>/dev/null || true
      # A busy tansu can outlive SIGTERM; a broker left behind keeps a core
      # busy for every later run on this machine.
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?start needs a folder}" ;;
  stop) stop "${2:?stop needs a folder}" ;;
  clickhouse) start_clickhouse "${2:?clickhouse needs a folder}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR | clickhouse DIR" >&2; exit 2 ;;
esac
