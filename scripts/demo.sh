#!/usr/bin/env bash
# The main job on a built-in demo dataset, from a fresh machine: set-up, synthetic spoken digits from
# espeak-ng (10 speakers, AudioMNIST layout, 48 kHz), then two-rank MPI training with a held-out
# validation fold, predictions for a few clips and the run report. Ends with the validation accuracy
# and where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=.build/release/digits-dist
# Open MPI refuses to run as root unless told; containers and CI run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [ ! -d demo-data/10 ]; then
    "$bin" synth --out demo-data --speakers 10 --per-digit 8 --seed 1
fi
"$bin" data --data demo-data --folds 5
rm -rf runs/demo
mpirun --oversubscribe -n 2 "$bin" train --config configs/demo.yaml --out runs/demo
echo "demo: predictions of the trained model for three clips of the held-out fold:"
held_out=$(python3 -c "import json; print(json.load(open('runs/demo/summary.json'))['folds'][0]['validation_speakers'][0])")
"$bin" predict --checkpoint runs/demo demo-data/$held_out/{3,7,9}_${held_out}_0.wav
"$bin" report runs/demo
python3 - <<'PY'
import json
s = json.load(open("runs/demo/summary.json"))
for f in s["folds"]:
    m = f["metrics"]
    print(f"demo: fold {f['fold']} (held-out speakers {', '.join(f['validation_speakers'])}): "
          f"validation accuracy {m['accuracy']:.3f}, macro ROC-AUC {m['macro_roc_auc']:.3f}")
print("demo: report in runs/demo/report.html; model in runs/demo/fold-0/final.ckpt")
PY
