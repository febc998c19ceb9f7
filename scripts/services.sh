#!/usr/bin/env bash
# Installs and starts the services Alawael needs on this machine: FerretDB
# (the embedded MongoDB-compatible default) and Redis. Sourced by scripts/run,
# scripts/test and scripts/bench; every function is idempotent.
#
# ALAWAEL_FERRETDB_BACKEND picks FerretDB's storage: `sqlite` (the default) or
# `postgresql`, a private PostgreSQL cluster from Debian's `postgresql` package
# started beside it (loopback only, trust authentication: it is reachable only
# from this machine and holds throwaway or development data).
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

# Runs apt-get install for the given packages, through sudo unless root.
apt_install() {
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >&2
  else
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >&2
  fi
}

ensure_redis() {
  command -v redis-server >/dev/null && return 0
  log "installing Redis with apt-get"
  apt_install redis-server
}

# The test suite drives GraphiQL in headless Chromium (Debian's package).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  log "installing Chromium with apt-get"
  apt_install chromium
}

# Checks ALAWAEL_FERRETDB_BACKEND before anything is installed or started.
check_ferretdb_backend() {
  case "${ALAWAEL_FERRETDB_BACKEND:-sqlite}" in
    sqlite | postgresql) return 0 ;;
  esac
  log "ALAWAEL_FERRETDB_BACKEND must be 'sqlite' (the default) or 'postgresql', not '$ALAWAEL_FERRETDB_BACKEND'"
  return 1
}

# The newest installed PostgreSQL's programs (Debian keeps them off PATH).
postgresql_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

# Sets PG_BIN and PG_OS_USER, the account the cluster runs as: PostgreSQL
# refuses to run as root, so root uses a dedicated system account.
ensure_postgresql() {
  if ! PG_BIN=$(postgresql_bin); then
    log "installing PostgreSQL with apt-get"
    apt_install postgresql || return 1
    PG_BIN=$(postgresql_bin) || { log "no initdb under /usr/lib/postgresql/*/bin after installing"; return 1; }
  fi
  if [ "$(id -u)" -ne 0 ]; then PG_OS_USER=$(id -un); return 0; fi
  PG_OS_USER=alawael-pg
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating the system account $PG_OS_USER for PostgreSQL"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_OS_USER"
}

# as_pg_user COMMAND...: runs COMMAND (absolute paths only) as PG_OS_USER.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u "$PG_OS_USER" -- "$@"); else "$@"; fi
}

# start_postgresql DIR [durable] -> exports POSTGRESQL_PORT; sets POSTGRESQL_DATA
# A cluster of its own under DIR (kept when it exists): UTF8, C.UTF-8, TCP on
# loopback only, trust authentication, the socket inside DIR. Unless `durable`,
# fsync, synchronous commits and full-page writes are off (throwaway data).
start_postgresql() {
  mkdir -p "$1/sockets" || return 1
  local dir durable="${2:-}" sync=off
  dir=$(cd "$1" && pwd)
  [ "$durable" = durable ] && sync=on
  if [ "$(id -u)" -eq 0 ]; then
    chown -R "$PG_OS_USER:$PG_OS_USER" "$dir" || return 1
    if ! runuser -u "$PG_OS_USER" -- test -w "$dir"; then
      log "$PG_OS_USER cannot reach $dir (a parent directory lacks o+x); choose a state directory it can reach"
      return 1
    fi
  fi
  local data="$dir/data"
  if [ ! -f "$data/PG_VERSION" ]; then
    if ! as_pg_user "$PG_BIN/initdb" -D "$data" -U ferretdb -E UTF8 --locale=C.UTF-8 \
      -A trust >"$dir/initdb.log" 2>&1; then
      log "initdb failed; its output:"; cat "$dir/initdb.log" >&2; return 1
    fi
    echo "include = 'alawael.conf'" >>"$data/postgresql.conf"
  fi
  POSTGRESQL_PORT=$(free_port)
  cat >"$data/alawael.conf" <<CONF
# Written by scripts/services.sh at every start.
port = $POSTGRESQL_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sockets'
fsync = $sync
synchronous_commit = $sync
full_page_writes = $sync
CONF
  [ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER:$PG_OS_USER" "$data/alawael.conf"
  if ! as_pg_user "$PG_BIN/pg_ctl" start -w -t 60 -D "$data" -l "$dir/postgresql.log" >/dev/null; then
    log "PostgreSQL did not start; its log:"; cat "$dir/postgresql.log" >&2; return 1
  fi
  POSTGRESQL_DATA="$data"
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRESQL_PORT" -U ferretdb -X -q -t -A)
  if [ "$(as_pg_user "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'")" != 1 ]; then
    as_pg_user "${psql[@]}" -d postgres -c "CREATE DATABASE ferretdb" || return 1
  fi
  export POSTGRESQL_PORT
  log "PostgreSQL $(basename "$(dirname "$PG_BIN")") on 127.0.0.1:$POSTGRESQL_PORT as $PG_OS_USER (cluster in $data)"
}

stop_postgresql() {
  [ -n "${POSTGRESQL_DATA:-}" ] || return 0
  as_pg_user "$PG_BIN/pg_ctl" stop -D "$POSTGRESQL_DATA" -m fast -w >/dev/null
  POSTGRESQL_DATA=""
}

# start_ferretdb STATE_DIR [durable] -> exports FERRETDB_PORT, FERRETDB_PID
# GOGC=400: FerretDB allocates a lot per scanned document; collecting less often
# trades some memory for throughput.
start_ferretdb() {
  local dir="$1" storage where
  check_ferretdb_backend || return 1
  mkdir -p "$dir"
  if [ "${ALAWAEL_FERRETDB_BACKEND:-sqlite}" = postgresql ]; then
    start_postgresql "$dir/postgresql" "${2:-}" || return 1
    storage=(--handler=postgresql
      --postgresql-url="postgres://ferretdb@127.0.0.1:$POSTGRESQL_PORT/ferretdb")
    where="PostgreSQL on 127.0.0.1:$POSTGRESQL_PORT"
  else
    mkdir -p "$dir/data"
    storage=(--handler=sqlite --sqlite-url="file:$dir/data/")
    where="SQLite in $dir/data"
  fi
  FERRETDB_PORT=$(free_port)
  GOGC=400 "$FERRETDB_BIN" "${storage[@]}" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --state-dir="$dir" \
    --debug-addr=- --telemetry=disable --log-level=warn >"$dir/ferretdb.log" 2>&1 &
  FERRETDB_PID=$!
  if ! wait_for_port 127.0.0.1 "$FERRETDB_PORT" 30; then
    log "FerretDB did not start; its log:"; cat "$dir/ferretdb.log" >&2; return 1
  fi
  export FERRETDB_PORT FERRETDB_PID
  log "FerretDB $FERRETDB_VERSION on 127.0.0.1:$FERRETDB_PORT ($where)"
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
  stop_postgresql
}

# provide_services STATE_DIR DBNAME [durable]
# Uses MONGODB_URI / REDIS_URL when set; otherwise installs and starts local
# services under STATE_DIR and exports the variables pointing at them.
# `durable` keeps PostgreSQL's fsync on (scripts/run's data outlives the run).
provide_services() {
  local state="$1" dbname="$2" durable="${3:-}"
  if [ -z "${MONGODB_URI:-}" ]; then
    check_ferretdb_backend || return 1
    ensure_ferretdb || return 1
    if [ "${ALAWAEL_FERRETDB_BACKEND:-sqlite}" = postgresql ]; then
      ensure_postgresql || return 1
      # mktemp's 0700 state directory: the cluster's account must pass through it.
      mkdir -p "$state" && { [ "$(id -u)" -ne 0 ] || chmod o+x "$state"; } || return 1
    fi
    start_ferretdb "$state/ferretdb" "$durable" || return 1
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
