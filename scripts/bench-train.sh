#!/usr/bin/env bash
# One training step (forward, BCE, backward, AdamW) of digits-dist against PyTorch on the same model,
# batch and threads, interleaved side by side REPEATS times (the machines are noisy); prints every run,
# the medians and the ratio of the medians.
#   scripts/bench-train.sh [ARCH] [WIDTH] [BATCH] [THREADS] [STEPS] [REPEATS]      (pip install torch)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet18} width=${2:-16} batch=${3:-32} threads=${4:-2} steps=${5:-20} repeats=${6:-5}
model=(--arch "$arch" --width "$width" --batch "$batch" --threads "$threads" --steps "$steps")
rate() { grep -o '[0-9.]* samples/s' | head -1 | cut -d' ' -f1; }
.build/release/digits-dist bench train "${model[@]}"  # the profile, the sgemm peak and the memory, once
results=()
for _ in $(seq "$repeats"); do
    results+=("digits-dist=$(.build/release/digits-dist bench train "${model[@]}" --no-peak | rate)")
    results+=("pytorch=$(python3 scripts/bench-train-pytorch.py "${model[@]}" | rate)")
done
python3 scripts/medians.py --ratio digits-dist pytorch "digits-dist / PyTorch" "${results[@]}"
