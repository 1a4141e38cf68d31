#!/usr/bin/env bash
# What `make test` needs beyond what `make run` needs: an independent
# Standard Webhooks implementation (PyPI `standardwebhooks`) that the tests use
# to check our signatures.
set -euo pipefail
"$(dirname "$0")/deps.sh"
if ! python3 -c "import standardwebhooks" >/dev/null 2>&1; then
  echo "Installing the standardwebhooks Python package for the signature tests" >&2
  python3 -m pip install --quiet --disable-pip-version-check standardwebhooks 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages standardwebhooks
fi
