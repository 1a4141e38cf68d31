#!/usr/bin/env bash
# A throwaway S3-compatible server for the tests: moto's server mode (PyPI
# `moto[server]`, installed into target/test-tools/moto by
# scripts/test-deps.sh), in memory, on 127.0.0.1 and a free port.
#   scripts/s3.sh start   → prints the endpoint URL on stdout (bucket
#                           `tessera-test` exists)
#   scripts/s3.sh stop
# Tessera talks to it as it would to AWS: the object_store S3 client with
# SigV4-signed requests, and presigned GET URLs in payloads.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(pwd)/target/test-tools/moto"
state="${TESSERA_TEST_S3_DIR:-${TMPDIR:-/tmp}/tessera-test-s3}"
bucket=tessera-test

stop() {
  if [ -f "$state/pid" ]; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
    rm -f "$state/pid"
  fi
}

case "${1:-}" in
  start)
    [ -x "$venv/bin/moto_server" ] || { echo "moto is missing: run scripts/test-deps.sh" >&2; exit 1; }
    stop
    mkdir -p "$state"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    endpoint="http://127.0.0.1:$port"
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/server.log" 2>&1 &
    echo $! >"$state/pid"
    # Wait for it to answer, then create the bucket (moto accepts an
    # unsigned CreateBucket).
    python3 - "$endpoint" "$bucket" <<'PY' || { cat "$state/server.log" >&2; stop; exit 1; }
import sys, time, urllib.request, urllib.error
endpoint, bucket = sys.argv[1], sys.argv[2]
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(endpoint + "/", timeout=2).read()
        break
    except urllib.error.HTTPError:
        break
    except Exception:
        if time.time() > deadline:
            sys.exit("moto did not start")
        time.sleep(0.1)
req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
urllib.request.urlopen(req, timeout=10).read()
PY
    echo "$endpoint"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
