#!/usr/bin/env bash
# Installs and starts the services Alawael needs on this machine: FerretDB
# (the embedded MongoDB-compatible default) and Redis. Sourced by scripts/run
# and scripts/test; every function is idempotent.
#
# FerretDB is built with the Go toolchain from its published module. A plain
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` succeeds but
# the binary panics at start-up ("Invalid build/version/version.txt"), because
# that generated file is not part of the module. So we `go install` (which
# fetches the module), then build the same module once more from a copy of its
# source with version.txt written, as FerretDB's own build does.

FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.2}"
ALAWAEL_TOOLS="${ALAWAEL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/alawael}"
FERRETDB_BIN="${FERRETDB_BIN:-$ALAWAEL_TOOLS/ferretdb-$FERRETDB_VERSION}"

log() { printf '[alawael] %s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # host port seconds
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

ensure_ferretdb() {
  if [ -x "$FERRETDB_BIN" ] && "$FERRETDB_BIN" --version >/dev/null 2>&1; then return 0; fi
  command -v go >/dev/null || { log "Go is required to install FerretDB"; return 1; }
  log "installing FerretDB $FERRETDB_VERSION with go (first time only, a few minutes)"
  local started=$SECONDS
  GOFLAGS=-mod=mod go install "github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION" || return 1
  local moddir build
  moddir=$(go list -m -f '{{.Dir}}' "github.com/FerretDB/FerretDB@$FERRETDB_VERSION") || return 1
  build=$(mktemp -d)
  cp -r "$moddir/." "$build/" && chmod -R u+w "$build"
  echo "$FERRETDB_VERSION" >"$build/build/version/version.txt"
  mkdir -p "$ALAWAEL_TOOLS"
  (cd "$build" && go build -trimpath -o "$FERRETDB_BIN" ./cmd/ferretdb) || { rm -rf "$build"; return 1; }
  rm -rf "$build"
  log "FerretDB $FERRETDB_VERSION installed at $FERRETDB_BIN in $((SECONDS - started))s"
}

ensure_redis() {
  command -v redis-server >/dev/null && return 0
  log "installing Redis with apt-get"
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
  else
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
  fi
}

# The test suite drives GraphiQL in headless Chromium (Debian's package).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  log "installing Chromium with apt-get"
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
  else
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
  fi
}

# start_ferretdb STATE_DIR -> exports FERRETDB_PORT, FERRETDB_PID
start_ferretdb() {
  local dir="$1"
  mkdir -p "$dir/data"
  FERRETDB_PORT=$(free_port)
  "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$dir/data/" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --state-dir="$dir" \
    --debug-addr=- --telemetry=disable --log-level=warn >"$dir/ferretdb.log" 2>&1 &
  FERRETDB_PID=$!
  if ! wait_for_port 127.0.0.1 "$FERRETDB_PORT" 30; then
    log "FerretDB did not start; its log:"; cat "$dir/ferretdb.log" >&2; return 1
  fi
  export FERRETDB_PORT FERRETDB_PID
  log "FerretDB $FERRETDB_VERSION on 127.0.0.1:$FERRETDB_PORT (data in $dir/data)"
}

# start_redis STATE_DIR -> exports REDIS_PORT, REDIS_PID
start_redis() {
  local dir="$1"
  mkdir -p "$dir"
  REDIS_PORT=$(free_port)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  if ! wait_for_port 127.0.0.1 "$REDIS_PORT" 15; then
    log "Redis did not start"; cat "$dir/redis.log" >&2; return 1
  fi
  export REDIS_PORT REDIS_PID
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

stop_services() {
  for pid in ${FERRETDB_PID:-} ${REDIS_PID:-}; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  FERRETDB_PID=""; REDIS_PID=""
}

# Uses MONGODB_URI / REDIS_URL when set; otherwise installs and starts local
# services under STATE_DIR and exports the variables pointing at them.
provide_services() {
  local state="$1" dbname="$2"
  if [ -z "${MONGODB_URI:-}" ]; then
    ensure_ferretdb || return 1
    start_ferretdb "$state/ferretdb" || return 1
    export MONGODB_URI="mongodb://127.0.0.1:$FERRETDB_PORT/$dbname"
    export FERRETDB_BIN
  else
    log "using MONGODB_URI from the environment"
  fi
  if [ -z "${REDIS_URL:-}" ]; then
    ensure_redis || return 1
    start_redis "$state/redis" || return 1
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  else
    log "using REDIS_URL from the environment"
  fi
}
