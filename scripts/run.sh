#!/usr/bin/env bash
# `make run`: start Tessera for local development on the embedded SQLite
# database under ./data, allowing webhooks and downloads to loopback so the
# quickstart works on one machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/tessera
export TESSERA_DATA_DIR="${TESSERA_DATA_DIR:-./data}"
export TESSERA_LISTEN="${TESSERA_LISTEN:-127.0.0.1:7700}"
export TESSERA_ALLOW_PRIVATE_TARGETS="${TESSERA_ALLOW_PRIVATE_TARGETS:-127.0.0.0/8,::1/128}"
export RUST_LOG="${RUST_LOG:-info}"

first_start=yes
[ -e "$TESSERA_DATA_DIR/tessera.db" ] && first_start=no

cat <<MSG

  Tessera is starting on http://$TESSERA_LISTEN/
  Dashboard: http://$TESSERA_LISTEN/dashboard (log in with your API key)
  Data (SQLite database and files): $TESSERA_DATA_DIR
  Local development mode: webhooks and downloads may reach $TESSERA_ALLOW_PRIVATE_TARGETS
  (production default: public addresses only).
MSG
if [ "$first_start" = no ]; then
  cat <<MSG
  Your API key was printed on the first start. To make a new one:
      $bin keys create --name me --data-dir $TESSERA_DATA_DIR
MSG
fi
echo
exec "$bin" serve
