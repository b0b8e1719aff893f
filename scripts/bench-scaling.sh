#!/usr/bin/env bash
# Weak scaling from 1 to 2 ranks of one thread each (per-rank batch fixed), digits-dist under mpirun with
# its bucketed all-reduce against PyTorch DDP (gloo), measured side by side; prints both efficiencies
# (2-rank samples/s ÷ twice the 1-rank samples/s).
#   scripts/bench-scaling.sh [ARCH] [WIDTH] [BATCH] [STEPS]      (pip install torch)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet18} width=${2:-16} batch=${3:-32} steps=${4:-20}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--arch "$arch" --width "$width" --batch "$batch" --steps "$steps" --threads 1 --no-peak)
ours1=$(mpirun --oversubscribe -n 1 .build/release/digits-dist bench train "${common[@]}" | grep -o '[0-9.]* samples/s' | head -1)
ours2=$(mpirun --oversubscribe -n 2 .build/release/digits-dist bench train "${common[@]}" | grep -o '[0-9.]* samples/s global')
ddp1=$(python3 scripts/bench-ddp-pytorch.py --ranks 1 --arch "$arch" --width "$width" --batch "$batch" --steps "$steps" | grep -o '[0-9.]* samples/s')
ddp2=$(python3 scripts/bench-ddp-pytorch.py --ranks 2 --arch "$arch" --width "$width" --batch "$batch" --steps "$steps" | grep -o '[0-9.]* samples/s')
python3 - "$ours1" "$ours2" "$ddp1" "$ddp2" <<'PY'
import sys
o1, o2, d1, d2 = (float(a.split()[0]) for a in sys.argv[1:])
print(f"digits-dist: 1 rank {o1:.0f} samples/s, 2 ranks {o2:.0f} samples/s, efficiency {o2 / (2 * o1):.0%}")
print(f"PyTorch DDP: 1 rank {d1:.0f} samples/s, 2 ranks {d2:.0f} samples/s, efficiency {d2 / (2 * d1):.0%}")
PY
