#!/usr/bin/env bash
# Fetches the real AudioMNIST (30,000 WAVs, 60 speakers, 48 kHz; Becker et al., MIT licence) into
# data/AudioMNIST (or the folder given). Needs internet and about 1 GB of disk.
#   scripts/fetch-audiomnist.sh [DEST]
#   digits-dist data --data data/AudioMNIST/data --folds 5
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-data/AudioMNIST}"
if [ -d "$dest/data/60" ]; then
    echo "fetch-audiomnist: $dest already holds AudioMNIST"
    exit 0
fi
mkdir -p "$(dirname "$dest")"
git clone --depth 1 https://github.com/soerenab/AudioMNIST.git "$dest"
count=$(find "$dest/data" -name '*.wav' | wc -l)
echo "fetch-audiomnist: $count clips in $dest/data"
[ "$count" -eq 30000 ] || { echo "fetch-audiomnist: expected 30000 clips, found $count" >&2; exit 1; }
