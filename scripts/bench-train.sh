#!/usr/bin/env bash
# One training step (forward, BCE, backward, AdamW) of digits-dist against PyTorch on the same model,
# batch and threads, measured side by side in one run; prints both and the ratio.
#   scripts/bench-train.sh [ARCH] [WIDTH] [BATCH] [THREADS] [STEPS]      (pip install torch)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet18} width=${2:-16} batch=${3:-32} threads=${4:-2} steps=${5:-20}
ours=$(.build/release/digits-dist bench train --arch "$arch" --width "$width" --batch "$batch" --threads "$threads" --steps "$steps")
echo "$ours"
theirs=$(python3 scripts/bench-train-pytorch.py --arch "$arch" --width "$width" --batch "$batch" --threads "$threads" --steps "$steps")
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import re, sys
ours = float(re.search(r"([\d.]+) samples/s", sys.argv[1]).group(1))
theirs = float(re.search(r"([\d.]+) samples/s", sys.argv[2]).group(1))
print(f"digits-dist / PyTorch: {ours / theirs:.2f}x samples/s")
PY
