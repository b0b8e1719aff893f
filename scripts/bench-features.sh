#!/usr/bin/env bash
# WAV → log-mel on one core, digits-dist against librosa 0.11, on the same 48 kHz clips of 0.4–1 s
# (with resampling to 22,050 Hz), measured side by side in one run; prints both rates and their ratio.
#   scripts/bench-features.sh [CLIPS]        (pip install librosa soundfile)
set -euo pipefail
cd "$(dirname "$0")/.."
clips=${1:-500}
folder=$(mktemp -d)
trap 'rm -rf "$folder"' EXIT
librosa=$(python3 scripts/bench-features-librosa.py --clips "$clips" --keep-dir "$folder" | awk '/^librosa:/ {print $2}')
ours=$(.build/release/digits-dist bench features --wav-folder "$folder" | awk '/^digits-dist features:/ {print $3}')
echo "librosa:     $librosa clips/s"
echo "digits-dist: $ours clips/s"
python3 -c "print(f'ratio:       {float($ours) / float($librosa):.1f}x')"
