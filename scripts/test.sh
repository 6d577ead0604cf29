#!/usr/bin/env bash
# Set up (if needed) and run the test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPTT_EXTRAS=test source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec python -m pytest -q "$@"
