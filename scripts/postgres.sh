#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks, on a free port on loopback.
#
#   eval "$(bash scripts/postgres.sh start)"   # exports KILN_TEST_POSTGRES_URL, KILN_PG_DIR
#   bash scripts/postgres.sh stop "$KILN_PG_DIR"
#
# Uses Debian's server binaries (/usr/lib/postgresql/<version>/bin); installs the
# postgresql package when they are missing. Runs as the postgres user when started as
# root (initdb refuses root). fsync is off: the cluster holds nothing worth keeping.
set -euo pipefail

find_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

start() {
  local bin dir port as=()
  bin=$(find_bin || true)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q postgresql >&2
    bin=$(find_bin)
  fi
  dir=$(mktemp -d /tmp/kiln-pg-XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    as=(runuser -u postgres --)
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U kiln --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }
  "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U kiln kiln >&2
  echo "export KILN_TEST_POSTGRES_URL=postgres://kiln@127.0.0.1:$port/kiln"
  echo "export KILN_PG_DIR=$dir"
}

stop() {
  local dir=${1:?the cluster directory (KILN_PG_DIR)} bin as=()
  bin=$(find_bin)
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-${KILN_PG_DIR:-}}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
