#!/usr/bin/env bash
# Create ./.venv and install bptt into it (idempotent). Sourced by demo.sh and test.sh.
# BPTT_EXTRAS names the optional dependencies to install with it ("" for the demo,
# "test" for the test suite); each combination is installed once per pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BPTT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${BPTT_EXTRAS:-}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bptt needs Python >= 3.11; $("$PY" --version 2>&1) found (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.bptt-installed${EXTRAS:+-$EXTRAS}"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # The CPU build of torch first: an unpinned requirement would pull a CUDA build of several GB.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    # The test extra brings Triton on Linux (a 286 MB wheel, 1 GB installed, about half a
    # minute): the persistent kernel's tests run on the CPU under Triton's interpreter.
    "$VENV/bin/python" -m pip install -q -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
