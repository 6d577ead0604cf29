#!/usr/bin/env bash
# Set up (if needed) and run the main demonstration: MSGD vs MSGD-C vs MSGD-CR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPTT_EXTRAS= source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec bptt demo --store "${BPTT_STORE:-$ROOT/bptt-results.sqlite}" --out "$ROOT/demo-output" "$@"
