#!/usr/bin/env bash
# The seed's data at the seed's scale: 60 speakers, 30,000 clips at 48 kHz in AudioMNIST's layout, then each
# phase of a real job on it with its wall time and every process's peak resident memory (GNU time):
# feature cache build (one process, all cores) → `mpirun -n 2 train` one epoch of resnet18-w16 → the seed's
# resnet50-w64 for STEPS steps → `evaluate` of the resnet18 run folder's model on all 30,000 clips.
#   scripts/bench-scale.sh [SET_DIR] [STEPS]       (default /tmp/scale-set, 200 steps)
# Where AudioMNIST itself is not on the machine (it cannot be downloaded here), SET_DIR is stood up from the
# 2,500 real FSDD recordings: each converted once to 48 kHz 16-bit (as AudioMNIST's files are), then
# AudioMNIST speaker NN's clip {digit}_NN_{i}.wav is a hard link to FSDD speaker (NN-1) mod 5's
# {digit}_{speaker}_{i} (12 speakers share each voice). With the real set: SET_DIR=data/AudioMNIST/data.
set -euo pipefail
cd "$(dirname "$0")/.."
set_dir=${1:-/tmp/scale-set} steps=${2:-200}
fsdd=${FSDD:-../shared/data/fsdd/recordings}
bin=$PWD/.build/release/digits-dist
[ -x "$bin" ] || scripts/setup.sh
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ ! -d "$set_dir/60" ]; then
    speakers=(george jackson nicolas theo yweweler)
    mkdir -p "$set_dir/.source"
    ls "$fsdd"/*.wav | xargs -P "$(nproc)" -I{} sh -c 'sox "$1" -r 48000 -b 16 "$2/.source/$(basename "$1")"' _ {} "$set_dir"
    for n in $(seq 1 60); do
        nn=$(printf '%02d' "$n") speaker=${speakers[$(((n - 1) % 5))]}
        mkdir -p "$set_dir/$nn"
        for digit in 0 1 2 3 4 5 6 7 8 9; do
            for i in $(seq 0 49); do ln -f "$set_dir/.source/${digit}_${speaker}_${i}.wav" "$set_dir/$nn/${digit}_${nn}_${i}.wav"; done
        done
    done
fi
work=$(mktemp -d /tmp/bench-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
clips=$(find "$set_dir" -path "$set_dir/.source" -prune -o -name '*.wav' -print | wc -l)
timed() {  # timed LABEL COMMAND...: the phase's wall time, then each process's peak RSS
    local label=$1 start
    shift
    start=$(date +%s.%N)
    "$@" >"$work/$label.out" 2>"$work/$label.err" || { tail -5 "$work/$label.err"; exit 1; }
    printf '%-38s %7.1f s   peak RSS %s\n' "$label" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" \
        "$(grep -ao 'peak-rss [0-9]*' "$work/$label.err" | awk '{printf "%s%.0f MB", sep, $2 / 1024; sep=", "}')"
}
rss=(/usr/bin/time -f 'peak-rss %M')
common=(--data "$set_dir" --cache-dir "$work/cache" --set dataset.validation_size=0.2 --set dataset.folds=[0]
        --set environment.seed=1 --set training.epochs=1 --set training.checkpoint_every_steps=0)
echo "$clips clips in $set_dir, $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p'))"
timed "cache build (1 process, all cores)" "${rss[@]}" "$bin" cache --data "$set_dir" --cache-dir "$work/cache"
timed "train resnet18-w16, 1 epoch, 2 ranks" mpirun --oversubscribe -n 2 "${rss[@]}" "$bin" train "${common[@]}" \
    --out "$work/r18" --threads 1 --set architecture.backbone=resnet18 --set architecture.width=16
sample=$(awk -v s="$steps" -v c="$clips" 'BEGIN { printf "%.4f", s * 32 / (c * 0.8) }')
timed "train resnet50-w64, $steps steps, 2 ranks" mpirun --oversubscribe -n 2 "${rss[@]}" "$bin" train "${common[@]}" \
    --out "$work/r50" --threads 1 --set architecture.backbone=resnet50 --set architecture.width=64 \
    --set dataset.data_sample=$sample --set dataset.data_sample_choice=[Train]
timed "evaluate resnet18-w16 on every clip, 2 ranks" mpirun --oversubscribe -n 2 "${rss[@]}" "$bin" evaluate \
    --checkpoint "$work/r18" --data "$set_dir" --cache-dir "$work/cache" --threads 1
grep -ah 'done in\|samples/s' "$work"/*.err | grep -ao 'step [0-9]*/[0-9]* .*samples/s' | tail -2 || true
