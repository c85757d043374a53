#!/usr/bin/env bash
# Makes sure a Chromium is at hand for the browser test of /docs (Debian's `chromium` package,
# driven by playwright-core through its executablePath). CHROMIUM_PATH names another one.
set -euo pipefail
path="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$path" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "ensure-chromium: $path is missing; install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium (for the browser test of /docs)"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
[ -x "$path" ] || { echo "ensure-chromium: chromium did not install at $path" >&2; exit 1; }
