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
model=(--arch "$arch" --width "$width" --batch "$batch" --steps "$steps")
# Plain BatchNorm, as DDP's torchvision model (training's default normalises in 4 mel bands).
common=("${model[@]}" --threads 1 --no-peak --set architecture.subspectral_bands=1)
rates() { grep -o '[0-9.]* samples/s' | tail -1 | cut -d' ' -f1; }
results=()
for _ in $(seq "$repeats"); do
    results+=("ours1=$(mpirun --oversubscribe -n 1 .build/release/digits-dist bench train "${common[@]}" | rates)")
    results+=("ours2=$(mpirun --oversubscribe -n 2 .build/release/digits-dist bench train "${common[@]}" | rates)")
    results+=("blocking2=$(mpirun --oversubscribe -n 2 .build/release/digits-dist bench train "${common[@]}" --allreduce blocking | rates)")
    results+=("ddp1=$(python3 scripts/bench-ddp-pytorch.py --ranks 1 "${model[@]}" | rates)")
    results+=("ddp2=$(python3 scripts/bench-ddp-pytorch.py --ranks 2 "${model[@]}" | rates)")
done
python3 scripts/medians.py --efficiency ours1 ours2 "digits-dist, overlapped all-reduce" \
    --efficiency ours1 blocking2 "digits-dist, one blocking all-reduce after backward" \
    --efficiency ddp1 ddp2 "PyTorch DDP (gloo)" "${results[@]}"
