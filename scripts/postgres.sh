#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests, from the machine's own packages:
#   scripts/postgres.sh start   → prints the database URL on stdout
#   scripts/postgres.sh stop
# The cluster lives in $TESSERA_TEST_PG_DIR (default /tmp/tessera-test-postgres,
# outside the checkout so the `postgres` user can reach it whatever the
# checkout's permissions), runs with fsync off (it is thrown away), listens on
# 127.0.0.1 only, on a free port, and trusts local connections. Installs the
# `postgresql` package with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${TESSERA_TEST_PG_DIR:-${TMPDIR:-/tmp}/tessera-test-postgres}"
data="$root/data"
case "$root" in /|"") echo "refusing to use $root" >&2; exit 2 ;; esac

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "Installing PostgreSQL for the tests" >&2
  sudo_=()
  [ "$(id -u)" -ne 0 ] && sudo_=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
    || { "${sudo_[@]}" apt-get update -qq >/dev/null && "${sudo_[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
  bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi

# initdb refuses to run as root: run the server as the `postgres` user then.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  as_owner=(runuser -u postgres --)
fi

case "${1:-}" in
  start)
    "$0" stop >/dev/null 2>&1 || true
    rm -rf "$root"
    mkdir -p "$root"
    [ "${#as_owner[@]}" -gt 0 ] && chown postgres "$root"
    "${as_owner[@]}" "$bindir/initdb" -D "$data" -A trust -U postgres --no-sync >"$root/initdb.log" 2>&1 \
      || { cat "$root/initdb.log" >&2; exit 1; }
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $root -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
      start >/dev/null || { cat "$root/server.log" >&2; exit 1; }
    "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE tessera_test" >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/tessera_test"
    ;;
  stop)
    [ -d "$data" ] && "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
