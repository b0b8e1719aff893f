#!/usr/bin/env bash
# One training step (forward, BCE, backward, AdamW) of digits-dist against PyTorch on the same model,
# batch and threads, interleaved side by side REPEATS times (the machines are noisy); prints every run,
# the medians and the ratios of the medians. Both run in Float32 and in mixed precision: digits-dist with
# --precision bf16 (where the CPU has AVX512_BF16), PyTorch under torch.autocast("cpu", dtype=bfloat16),
# which the seed's `mixed_precision_training: true` means. Then the precision training would pick here
# (DIGITS_DIST_BF16 unset: bf16 only where the CPU runs it faster) and the GEMM peaks.
#   scripts/bench-train.sh [ARCH] [WIDTH] [BATCH] [THREADS] [STEPS] [REPEATS]      (pip install torch)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet18} width=${2:-16} batch=${3:-32} threads=${4:-2} steps=${5:-20} repeats=${6:-5}
model=(--arch "$arch" --width "$width" --batch "$batch" --threads "$threads" --steps "$steps")
# Plain BatchNorm, as the peer's torchvision model (training's default normalises in 4 mel bands).
plain=(--set architecture.subspectral_bands=1)
binary=.build/release/digits-dist
rate() { grep -o '[0-9.]* samples/s' | head -1 | cut -d' ' -f1; }
precisions=(fp32)
grep -qw avx512_bf16 /proc/cpuinfo && precisions+=(bf16)
$binary bench train "${model[@]}" "${plain[@]}" --precision fp32  # the profile, the sgemm peak and the memory, once
results=()
for _ in $(seq "$repeats"); do
    for precision in "${precisions[@]}"; do
        results+=("digits-dist-$precision=$($binary bench train "${model[@]}" "${plain[@]}" --precision "$precision" --no-peak | rate)")
        results+=("pytorch-$precision=$(python3 scripts/bench-train-pytorch.py "${model[@]}" --precision "$precision" | rate)")
    done
done
ratios=(--ratio digits-dist-fp32 pytorch-fp32 "digits-dist / PyTorch, Float32")
if [ ${#precisions[@]} -gt 1 ]; then
    ratios+=(--ratio digits-dist-bf16 pytorch-bf16 "digits-dist / PyTorch, both bf16"
             --ratio digits-dist-fp32 pytorch-bf16 "digits-dist Float32 / PyTorch bf16 autocast"
             --ratio digits-dist-bf16 digits-dist-fp32 "digits-dist bf16 / Float32"
             --ratio pytorch-bf16 pytorch-fp32 "PyTorch bf16 autocast / Float32")
fi
python3 scripts/medians.py "${ratios[@]}" "${results[@]}"
echo "mixed_precision_training: true would train in: $($binary bench train "${model[@]}" "${plain[@]}" --steps 1 --no-peak \
    --set environment.mixed_precision_training=true | head -1 | grep -o 'threads [0-9]* [A-Za-z0-9]*' | cut -d' ' -f3)"
for precision in "${precisions[@]}"; do $binary bench gemm --threads "$threads" --precision "$precision"; done
