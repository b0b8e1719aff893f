#!/usr/bin/env bash
# The augmentation ablation: scripts/loso.sh with the defaults, then once with each speaker augmentation
# switched off (one change at a time against the defaults), and a Markdown table of LOSO mean ± std over
# the seeds. The PyTorch peer is skipped (it does not change with our augmentations).
#   scripts/loso-ablation.sh [SEEDS] [--set key=value ...]    # extra --set apply to every row
# Environment: ABLATION_OUT (run folders, default runs/ablation); FSDD as for loso.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-"1 2 3"}
shift || true
out=${ABLATION_OUT:-runs/ablation}
mkdir -p "$out"
rows=(
    "the defaults|"
    "no normalisation (the seed's No)|audio.spectrogram_normalization=No"
    "no time shift|augmentation.time_shift_seconds=0"
    "no tempo|augmentation.tempo=0"
    "no vocal-tract warp|augmentation.vocal_tract=0"
    "no gain|augmentation.gain_db=0"
    "no reverberation|augmentation.reverb_probability=0"
    "no noise|augmentation.noise_probability=0"
    "no frequency masks|augmentation.frequency_masks=0"
    "no time masks|augmentation.time_masks=0"
    "plain BatchNorm (no sub-spectral bands)|architecture.subspectral_bands=1"
)
table="$out/table.md"
printf '| run | change | LOSO mean ± std | per-seed means |\n|---|---|---|---|\n' >"$table"
for row in "${rows[@]}"; do
    name=${row%%|*}
    change=${row#*|}
    slug=$(printf '%s' "${change:-defaults}" | tr -c 'A-Za-z0-9_' '-')
    args=("$@")
    [ -z "$change" ] || args+=(--set "$change")
    LOSO_PEER=0 LOSO_OUT="$out/$slug" scripts/loso.sh "$seeds" "${args[@]}" >"$out/$slug.txt"
    result=$(grep '^digits-dist LOSO mean' "$out/$slug.txt")
    mean=$(sed -E 's/.*mean ([0-9.]+ ± [0-9.]+).*/\1/' <<<"$result")
    per_seed=$(sed -E 's/.*per-seed means ([^)]*)\).*/\1/' <<<"$result")
    printf '| %s | `%s` | %s | %s |\n' "$name" "${change:-(none)}" "$mean" "$per_seed" | tee -a "$table"
done
echo "table: $table"
