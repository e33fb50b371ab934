#!/usr/bin/env bash
# The browser tests drive Debian's chromium through chromedriver (Selenium). Install both
# when they are missing and this user may (root with apt-get); otherwise say how.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium and chromium-driver for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "note: chromium/chromedriver are missing, so the browser tests will be skipped;" \
       "install them with: sudo apt install chromium chromium-driver" >&2
fi
