#!/usr/bin/env bash
# Weak scaling from 1 to 2 ranks of one thread each (per-rank batch fixed), digits-dist under mpirun with
# its bucketed all-reduce overlapped with backward (and, for comparison, one blocking all-reduce after
# backward) against PyTorch DDP (gloo), interleaved side by side REPEATS times; prints the median
# samples/s and the efficiencies (2-rank samples/s ÷ twice the 1-rank samples/s).
#   scripts/bench-scaling.sh [ARCH] [WIDTH] [BATCH] [STEPS] [REPEATS]      (pip install torch)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet18} width=${2:-16} batch=${3:-32} steps=${4:-20} repeats=${5:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--arch "$arch" --width "$width" --batch "$batch" --steps "$steps" --threads 1 --no-peak)
model=(--arch "$arch" --width "$width" --batch "$batch" --steps "$steps")
rates() { grep -o '[0-9.]* samples/s' | tail -1 | cut -d' ' -f1; }
results=()
for _ in $(seq "$repeats"); do
    results+=("ours1=$(mpirun --oversubscribe -n 1 .build/release/digits-dist bench train "${common[@]}" | rates)")
    results+=("ours2=$(mpirun --oversubscribe -n 2 .build/release/digits-dist bench train "${common[@]}" | rates)")
    results+=("blocking2=$(mpirun --oversubscribe -n 2 .build/release/digits-dist bench train "${common[@]}" --allreduce blocking | rates)")
    results+=("ddp1=$(python3 scripts/bench-ddp-pytorch.py --ranks 1 "${model[@]}" | rates)")
    results+=("ddp2=$(python3 scripts/bench-ddp-pytorch.py --ranks 2 "${model[@]}" | rates)")
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
runs = {}
for item in sys.argv[1:]:
    key, value = item.split("=")
    runs.setdefault(key, []).append(float(value))
m = {key: statistics.median(values) for key, values in runs.items()}
print(f"digits-dist: 1 rank {m['ours1']:.0f} samples/s, 2 ranks {m['ours2']:.0f} samples/s, efficiency {m['ours2'] / (2 * m['ours1']):.0%} (medians of {len(runs['ours1'])})")
print(f"  with one blocking all-reduce after backward instead: 2 ranks {m['blocking2']:.0f} samples/s, efficiency {m['blocking2'] / (2 * m['ours1']):.0%}")
print(f"PyTorch DDP: 1 rank {m['ddp1']:.0f} samples/s, 2 ranks {m['ddp2']:.0f} samples/s, efficiency {m['ddp2'] / (2 * m['ddp1']):.0%}")
PY
