#!/usr/bin/env bash
# The browser tests drive Debian's chromium through chromedriver (Selenium); `make pdf` prints
# the book with chromium and its test reads the PDF with poppler-utils (pdftotext, pdfinfo,
# pdfimages). Install them when they are missing and this user may (root with apt-get);
# otherwise say how. With --node: only Node.js and npm, which `make book` needs to install the
# pinned onnxruntime-web of chapter 9's in-page demo (web/package-lock.json).
set -euo pipefail
if [ "${1:-}" = "--node" ]; then
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    exit 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing nodejs and npm for the in-page demo of chapter 9..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "note: Node.js and npm are missing; the book's in-page demo needs them to install" \
         "onnxruntime-web: sudo apt install nodejs npm" >&2
  fi
  exit 0
fi
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
   && command -v pdftotext >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium, chromium-driver and poppler-utils for the browser and PDF tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver poppler-utils >/dev/null
else
  echo "note: chromium/chromedriver/poppler-utils are missing, so the browser tests will be skipped" \
       "and make pdf cannot run; install them with: sudo apt install chromium chromium-driver poppler-utils" >&2
fi
