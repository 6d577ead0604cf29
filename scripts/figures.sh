#!/usr/bin/env bash
# Regenerate the figures of the README and docs/ from the code as it is.
#
#   bash scripts/figures.sh [STORES_DIR]
#
# Always (about 5 minutes of one core): the demonstration (docs/demo.png, runs 1-15 of
# a fresh store), every `bptt plot` figure (several of them read runs 10 and 12 of that
# store), the penalties study and the README's own-network example.
# With STORES_DIR, also the figures of the long reproductions, redrawn from their
# finished runs (nothing is trained): a store named after each one, where present:
#   figure7-claims.sqlite   bptt reproduce figure7 --budget claims
#   figure7-quick.sqlite    bptt reproduce figure7 --budget quick
#   generalization-quick.sqlite, remedies-quick.sqlite   (the same, their budgets)
#   table1.sqlite           bptt reproduce table1 --budget full --max-epochs 40 (Nottingham,
#                           Piano-midi.de, JSB Chorales);  musedata.sqlite: MuseData
#   ptb500.sqlite           bptt reproduce table1 --budget full --max-epochs 5 --time-budget 120
#                           --dataset ptb_1step
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPTT_EXTRAS= source "$ROOT/scripts/setup.sh"
cd "$ROOT"
STORES="${1:-}"
FIG="$ROOT/docs/figures"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export BPTT_STORE="$WORK/demo.sqlite"

# the one PNG matching PATTERN that a plot command wrote into $WORK/p, copied to docs/figures/TARGET
take() {
  local found=( "$WORK"/p/$1 )
  [[ ${#found[@]} -eq 1 && -f "${found[0]}" ]] || { echo "expected one file $1 in $WORK/p, found: ${found[*]}" >&2; exit 1; }
  cp "${found[0]}" "$FIG/$2"
}
plot() { rm -rf "$WORK/p"; bptt plot "$@" --out "$WORK/p" >/dev/null; }

bptt demo --store "$BPTT_STORE" --out "$WORK/demo" --no-progress
cp "$WORK/demo/demo.png" "$ROOT/docs/demo.png"

plot gradient-flow --init basic_tanh --task temporal_order --length 50
take 'gradient-flow-*.png' gradient-flow-init.png
take 'jacobian-norms-*.png' jacobian-norms-init.png
plot gradient-flow --run 12;      take 'gradient-flow-*.png' gradient-flow-trained.png
plot spectra --run 12;            take 'spectra-*.png' spectra.png
plot lyapunov --init smart_tanh;  take 'lyapunov-*.png' lyapunov.png
plot depth;                       take 'depth-*.png' depth.png
plot run 10;                      take 'training-run10*.png' run-msgd-c.png
plot bifurcation;                 take 'bifurcation-*.png' bifurcation.png
plot basins;                      take 'basins*.png' basins.png; take 'trajectories*.png' trajectories.png
plot cliff;                       take 'cliff*.png' cliff.png
plot teacher-forcing;             take 'teacher-forcing*.png' teacher-forcing.png
plot penalties;                   take 'penalties*.png' penalties.png

# the README's "Your own network" example, as printed
python - "$ROOT/README.md" "$WORK" <<'EOF'
import re, sys, os
text = open(sys.argv[1]).read()
code = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "lstm_error_signals.png" in b)
os.chdir(sys.argv[2])
exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
EOF
cp "$WORK/lstm_error_signals.png" "$FIG/lstm_error_signals.png"

if [[ -n "$STORES" ]]; then
  report() {   # STORE SWEEP FILE-IN-REPORT TARGET
    [[ -f "$STORES/$1" ]] || { echo "skipped $4: no $STORES/$1"; return; }
    if ! python - "$STORES/$1" "$2" <<'EOF'
import sys
from bptt.experiments.registry import get
from bptt.store import OUTCOME_STATUSES, Store
runs = Store(sys.argv[1]).list_runs(sweep=sys.argv[2])
done = bool(runs) and all(r["status"] in OUTCOME_STATUSES for r in runs)
name, _, budget = sys.argv[2].partition("-")
if done and name in ("figure7", "synthetic", "generalization"):      # every run of the sweep exists
    exp = get(name)
    done = len(runs) >= len(exp.specs(exp.budget(budget)))
sys.exit(0 if done else 1)
EOF
    then echo "skipped $4: the sweep $2 in $STORES/$1 is missing or not finished"; return; fi
    rm -rf "$WORK/r"; bptt report "$2" --store "$STORES/$1" --out "$WORK/r" >/dev/null
    cp "$WORK/r/$3" "$FIG/$4"
  }
  report figure7-claims.sqlite figure7-claims figure7.png figure7-claims.png
  report figure7-quick.sqlite figure7-quick figure7.png figure7-quick.png
  report generalization-quick.sqlite generalization-quick generalization.png generalization-quick.png
  report remedies-quick.sqlite remedies-quick remedies.png remedies-quick.png
  report table1.sqlite table1-full table1.png table1-full40.png
  report musedata.sqlite table1-full table1.png table1-musedata-full40.png
  report ptb500.sqlite table1-full table1-updates.png table1-ptb500-updates.png
fi
echo "figures written to $FIG and $ROOT/docs/demo.png"
