#!/usr/bin/env bash
# Fuzz the live API against its own OpenAPI document with schemathesis
# (installed by scripts/test-deps.sh): a bounded number of examples per
# operation, failing on any 5xx and on any response the document does not
# describe. The server runs with a throwaway SQLite database, and the whole
# run happens in a network namespace of its own (`unshare -rn`) where only
# loopback exists: whatever URL the fuzzer makes up (a public IP literal, a
# host name), nothing can leave the machine. Every host name also resolves
# to 127.0.0.1 without DNS. Before fuzzing, the script creates an agent, a
# finished run on the bundled sample video, a schedule and a webhook
# delivery, and points the operations that take their ids at them
# (scripts/schemathesis.toml), so the fuzzer reaches the handlers' logic
# rather than their 404s.
#
# Usage: scripts/schemathesis.sh [path/to/tessera] [max examples per operation]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TESSERA_FUZZ_ISOLATED:-}" ]; then
  if unshare -rn true 2>/dev/null && command -v ip >/dev/null; then
    exec unshare -rn env TESSERA_FUZZ_ISOLATED=1 \
      bash -c 'ip link set lo up && exec "$0" "$@"' "$(pwd)/scripts/schemathesis.sh" "$@"
  fi
  echo "scripts/schemathesis.sh: cannot make a network namespace (unshare -rn, ip);" \
    "refusing to fuzz with a route to other hosts" >&2
  exit 1
fi

bin="${1:-target/debug/tessera}"
examples="${2:-${SCHEMATHESIS_EXAMPLES:-25}}"
st=target/test-tools/venv/bin/schemathesis
[ -x "$st" ] || { echo "schemathesis is missing: run scripts/test-deps.sh" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin is missing: build it first" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=
files_pid=
cleanup() {
  for pid in $server_pid $files_pid; do
    kill "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null || true; }
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port="$(free_port)"
files_port="$(free_port)"
python3 -m http.server "$files_port" --bind 127.0.0.1 --directory samples >/dev/null 2>&1 &
files_pid=$!
key="mk_schemathesis$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
base="http://127.0.0.1:$port"

TESSERA_LISTEN="127.0.0.1:$port" \
TESSERA_DATA_DIR="$work/data" \
TESSERA_BOOTSTRAP_API_KEY="$key" \
TESSERA_ALLOW_PRIVATE_TARGETS=127.0.0.0/8 \
TESSERA_WEBHOOK_MAX_RETRIES=0 \
TESSERA_DNS_OVERRIDES='*=127.0.0.1' \
TESSERA_YOUTUBE_FEED_URL="http://127.0.0.1:9/feeds?channel_id={channel_id}" \
TESSERA_YOUTUBE_CHANNEL_URL="http://127.0.0.1:9/{handle_or_path}" \
TESSERA_YTDLP_PATH=/bin/false \
RUST_LOG=warn \
  "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 200); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

api() { # METHOD PATH [JSON]
  curl -sS --fail-with-body -X "$1" "$base$2" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
export AGENT_ID DOOMED_AGENT_ID RUN_ID TRIGGER_ID DELIVERY_ID
agent='{"name":"fuzz","nodes":[{"id":"in","type":"video_input"},{"id":"cut","type":"trim","params":{"start_ms":0,"end_ms":1000}},{"id":"out","type":"render"}],"connections":[{"source":"in","target":"cut"},{"source":"cut","target":"out"}]}'
AGENT_ID="$(api POST /agent/create "$agent" | field '["id"]')"
# The one the fuzzer may delete.
DOOMED_AGENT_ID="$(api POST /agent/create "$agent" | field '["id"]')"
RUN_ID="$(api POST "/agent/$AGENT_ID/run" "{\"video_urls\":[\"http://127.0.0.1:$files_port/sample.mp4\"],\"callback_url\":\"http://127.0.0.1:$files_port/hook\"}" | field '["run_id"]')"
TRIGGER_ID="$(api POST "/agent/$AGENT_ID/triggers/add_schedule" "{\"cron_expression\":\"0 0 1 1 *\",\"video_urls\":[\"http://127.0.0.1:$files_port/sample.mp4\"]}" | field '["schedule_id"]')"
for _ in $(seq 1 600); do
  state="$(api GET "/agent_run/$RUN_ID" | field '["status"]')"
  case "$state" in completed|partial_complete|failed|cancelled) break ;; esac
  sleep 0.1
done
DELIVERY_ID="$(api GET "/webhook_deliveries?run_id=$RUN_ID" | field '["deliveries"][0]["id"]')"
echo "seeded: agent $AGENT_ID, run $RUN_ID ($state), schedule $TRIGGER_ID, delivery $DELIVERY_ID" >&2

# Deterministic generation: the same cases every run, and no example
# database, so a run never replays an earlier one's failures.
status=0
"$st" --config-file scripts/schemathesis.toml run "$base/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "$examples" \
  --phases examples,coverage,fuzzing \
  --generation-deterministic \
  --request-timeout 10 \
  --workers 1 \
  --generation-with-security-parameters false \
  --no-color \
  --suppress-health-check all \
  --report junit --report-dir "${ARTIFACTS_DIR:-artifacts}/schemathesis" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ---" >&2
  tail -50 "$work/server.log" >&2
fi
exit "$status"
