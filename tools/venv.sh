#!/usr/bin/env bash
# Create the project's virtual environment, also on a stock Debian/Ubuntu box.
#   tools/venv.sh PYTHON DIR
# Debian and Ubuntu ship python3 without the venv module's pip bootstrap (package
# python3-venv) and refuse `pip install` into the system Python (PEP 668,
# "externally-managed-environment"); a virtual environment avoids both.
set -euo pipefail
python=${1:-python3}
dir=${2:-.venv}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: '$python' was not found; install Python 3.10 or newer (Debian/Ubuntu: apt install python3)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "error: $("$python" --version 2>&1) is too old; the book needs Python 3.10 or newer" >&2
  exit 1
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  pkg="python$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing $pkg (Python's venv module is missing its pip bootstrap)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"
  else
    echo "error: $python cannot create virtual environments; install the venv module first:" >&2
    echo "       sudo apt install $pkg      (then run make again)" >&2
    exit 1
  fi
fi
echo "Creating the virtual environment $dir with $("$python" --version 2>&1)..."
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install -q --upgrade pip
