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
