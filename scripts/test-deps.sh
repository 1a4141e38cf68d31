#!/usr/bin/env bash
# What `make test` needs beyond what `make run` needs: an independent
# Standard Webhooks implementation (PyPI `standardwebhooks`) that the tests use
# to check our signatures, and Debian's headless Chromium with chromedriver
# for the browser tests (tests/it/webdriver.rs).
set -euo pipefail
"$(dirname "$0")/deps.sh"
if ! python3 -c "import standardwebhooks" >/dev/null 2>&1; then
  echo "Installing the standardwebhooks Python package for the signature tests" >&2
  python3 -m pip install --quiet --disable-pip-version-check standardwebhooks 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages standardwebhooks
fi

if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as_root=(sudo)
    else
      as_root=(none)
    fi
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "${as_root[*]:-}" != "none" ]; then
    echo "Installing chromium and chromium-driver for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    install=("${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver)
    # Refresh the package lists only when the install cannot find something.
    if ! "${install[@]}" >/dev/null 2>&1; then
      "${as_root[@]}" apt-get update -qq >/dev/null
      "${install[@]}" >/dev/null
    fi
  else
    cat >&2 <<MSG
The browser tests need Chromium and chromedriver at /usr/bin/chromium and
/usr/bin/chromedriver, which are missing. On Debian/Ubuntu:
    sudo apt-get install chromium chromium-driver
Then run the command again.
MSG
    exit 1
  fi
fi

# Contract tests: TypeScript (tests/it/contracts.rs runs `tsc --strict` on
# real payloads) and schemathesis (scripts/schemathesis.sh fuzzes the live
# API against its OpenAPI document). Both go under target/test-tools, pinned,
# so nothing is installed system-wide beyond Node.js and Python's venv.
TOOLS="$(cd "$(dirname "$0")/.." && pwd)/target/test-tools"
TYPESCRIPT_VERSION=5.9.3
SCHEMATHESIS_VERSION=4.32.5
mkdir -p "$TOOLS"

apt_install() {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
      || { sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
  else
    echo "Please install: $*" >&2
    exit 1
  fi
}

if ! command -v npm >/dev/null 2>&1; then
  echo "Installing Node.js and npm for the TypeScript contract test" >&2
  apt_install nodejs npm
fi
if [ "$("$TOOLS/node_modules/.bin/tsc" --version 2>/dev/null)" != "Version $TYPESCRIPT_VERSION" ]; then
  echo "Installing TypeScript $TYPESCRIPT_VERSION into $TOOLS" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "typescript@$TYPESCRIPT_VERSION" >/dev/null
fi

venv="$TOOLS/venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "Installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The S3 tests (the PostgreSQL pass of `make test`) run against moto's server
# mode, a local S3-compatible server (scripts/s3.sh), in a venv of its own.
MOTO_VERSION=5.2.5
moto="$TOOLS/moto"
if ! "$moto/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null \
  || [ ! -x "$moto/bin/moto_server" ]; then
  echo "Installing moto $MOTO_VERSION (a local S3 server) into $moto" >&2
  python3 -m venv "$moto" >/dev/null 2>&1 || { apt_install python3-venv; python3 -m venv "$moto"; }
  "$moto/bin/pip" install --quiet --disable-pip-version-check "moto[server,s3]==$MOTO_VERSION"
fi

# The fuzzing run isolates itself in a network namespace (unshare, ip).
command -v ip >/dev/null 2>&1 || apt_install iproute2
