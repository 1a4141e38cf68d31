#!/usr/bin/env bash
# Make sure the system packages Tessera needs are present: ffmpeg/ffprobe for
# media work, fonts for burned-in text. Installs them with apt when it can,
# otherwise says exactly what to install.
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    as_root=(none)
  fi
fi

if command -v apt-get >/dev/null 2>&1 && [ "${as_root[*]:-}" != "none" ]; then
  echo "Installing missing system packages: $pkgs" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  exit 0
fi

cat >&2 <<MSG
Tessera needs these system packages, which are missing: $pkgs
Install them with your package manager, for example:
    sudo apt-get install $pkgs        (Debian/Ubuntu)
    sudo dnf install ffmpeg            (Fedora, with RPM Fusion)
    brew install ffmpeg                (macOS)
Then run the command again.
MSG
exit 1
