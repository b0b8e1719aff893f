#!/usr/bin/env bash
# Leave-one-speaker-out on the real FSDD recordings: for each seed, `digits-dist train` with
# configs/fsdd.yaml (5 folds, one speaker held out each, trained on the other four under mpirun -n 2),
# the final weights scored on the held-out speaker; prints per-speaker accuracy and macro ROC-AUC, and the
# mean over folds and seeds (± the std of the per-seed means), and with several seeds what their models
# averaged per fold score (an ensemble: `evaluate --checkpoint … --checkpoint …`), and apart, each model with
# its BatchNorm re-fitted to the held-out speaker's clips (`evaluate --adapt-batchnorm`). When torch and librosa are installed, the
# PyTorch peer (scripts/train-fsdd-pytorch.py) runs the same folds and seeds beside it at the run's epoch
# count and learning rate: the plain recipe (centred short clips, no augmentation), or with
# LOSO_PEER_AUGMENT=1 the defaults' augmentations and PerClip written again in numpy (`--augment`: those of
# 2026-12-07, without reverberation, in plain BatchNorm).
#   scripts/loso.sh [SEEDS] [--set key=value ...]
#   scripts/loso.sh "1 2 3"                                       # the defaults (configs/fsdd.yaml: 20 epochs)
#   scripts/loso.sh "1 2 3" --set audio.short_clip_position=Start # one change against them
#   scripts/loso.sh "1 2 3" --set training.epochs=10 --set training.learning_rate=0.001 \
#       --set audio.spectrogram_normalization=No --set augmentation.time_shift_seconds=0 \
#       --set augmentation.tempo=0 --set augmentation.vocal_tract=0 --set augmentation.gain_db=0 \
#       --set augmentation.noise_probability=0 --set augmentation.frequency_masks=0 \
#       --set augmentation.time_masks=0 --set augmentation.reverb_probability=0 \
#       --set architecture.subspectral_bands=1                    # the plain seed recipe (the peer's)
# Environment: FSDD (the recordings folder), LOSO_OUT (run folders, default runs/loso),
# LOSO_PEER=0 skips the PyTorch peer, LOSO_PEER_AUGMENT=1 trains it with the defaults' augmentations,
# LOSO_LIBROSA_CACHE (the peer's features, default in /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-"1 2 3"}
shift || true
data=${FSDD:-../shared/data/fsdd/recordings}
out=${LOSO_OUT:-runs/loso}
bin=.build/release/digits-dist
[ -x "$bin" ] || scripts/setup.sh
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$out"
mkdir -p "$out"
for seed in $seeds; do
    mpirun --oversubscribe -n 2 "$bin" train --config configs/fsdd.yaml --data "$data" --out "$out/seed-$seed" \
        --threads 1 --set "environment.seed=$seed" "$@" 2>"$out/seed-$seed.log" \
        || { tail -5 "$out/seed-$seed.log"; exit 1; }
done
# Every score below is `evaluate` on one held-out speaker's recordings, listed in a CSV of their own.
recordings=$(cd "$data" && pwd)
held_out_speakers() {  # "fold:speaker" of every fold of run $1
    python3 -c 'import json, sys; print(" ".join(str(f["fold"]) + ":" + f["validation_speakers"][0] for f in json.load(open(sys.argv[1]))["folds"]))' \
        "$1/folds.json"
}
accuracy() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$1"; }
score() {  # score NAME SPEAKER [evaluate options]: accuracy on SPEAKER's clips, logs under $out/NAME
    local name=$1 speaker=$2
    shift 2
    "$bin" evaluate "$@" --data "$out/speaker-$speaker.csv" 2>"$out/$name.log" >"$out/$name.json" \
        || { tail -5 "$out/$name.log" >&2; return 1; }
    accuracy "$out/$name.json"
}
first=${seeds%% *}
for fold_speaker in $(held_out_speakers "$out/seed-$first"); do
    speaker=${fold_speaker#*:}
    { echo "audio,label,speaker"; for wav in "$recordings"/*_"$speaker"_*.wav; do name=$(basename "$wav"); echo "$wav,${name%%_*},$speaker"; done; } \
        >"$out/speaker-$speaker.csv"
done
# Each fold's model with its BatchNorm (scales and shifts by entropy minimisation, then statistics) fitted to the
# held-out speaker's own clips (`evaluate --adapt-batchnorm`, no labels used): what adapting to a caller's recordings gives. Transductive, so it is
# reported apart from the scores above.
adapted="$out/adapted.tsv"
: >"$adapted"
declare -A members  # speaker → one --checkpoint per seed: each seed's fold that held the speaker out
for seed in $seeds; do
    for fold_speaker in $(held_out_speakers "$out/seed-$seed"); do
        fold=${fold_speaker%%:*} speaker=${fold_speaker#*:}
        members[$speaker]+=" --checkpoint $out/seed-$seed/fold-$fold/final.ckpt"
        adapted_score=$(score "adapted-seed-$seed-$speaker" "$speaker" --checkpoint "$out/seed-$seed/fold-$fold/final.ckpt" --adapt-batchnorm)
        printf '%s\t%s\t%s\n' "$seed" "$speaker" "$adapted_score" >>"$adapted"
    done
done
# The seeds' models of each held-out speaker averaged (an ensemble), scored on that speaker: as they are,
# and each adapted as above.
ensemble="$out/ensemble.tsv"
: >"$ensemble"
if [ "$first" != "$seeds" ]; then
    for speaker in "${!members[@]}"; do
        # shellcheck disable=SC2086  # the members are words
        plain=$(score "ensemble-$speaker" "$speaker" ${members[$speaker]})
        # shellcheck disable=SC2086
        adapted_score=$(score "ensemble-adapted-$speaker" "$speaker" ${members[$speaker]} --adapt-batchnorm)
        printf '%s\t%s\t%s\n' "$speaker" "$plain" "$adapted_score" >>"$ensemble"
    done
fi
peer="$out/pytorch.tsv"
: >"$peer"
if [ "${LOSO_PEER:-1}" != 0 ] && python3 -c "import torch, librosa" 2>/dev/null; then
    epochs=$(grep -o '^ *epochs: [0-9]*' "$out/seed-${seeds%% *}/config.yaml" | cut -d: -f2)
    learning_rate=$(grep -o '^ *learning_rate: [0-9.e-]*' "$out/seed-${seeds%% *}/config.yaml" | cut -d: -f2)
    augment=()
    [ "${LOSO_PEER_AUGMENT:-0}" = 1 ] && augment=(--augment)
    for seed in $seeds; do
        for speaker in george jackson nicolas theo yweweler; do
            log="$out/pytorch-seed-$seed-$speaker.log"
            python3 scripts/train-fsdd-pytorch.py --data "$data" --val-speaker "$speaker" --seed "$seed" \
                --epochs "$epochs" --lr "$learning_rate" --threads 2 "${augment[@]}" --cache "${LOSO_LIBROSA_CACHE:-/tmp/fsdd-librosa-logmel.npz}" >"$log" 2>&1 \
                || { tail -5 "$log"; exit 1; }
            printf '%s\t%s\t%s\n' "$seed" "$speaker" "$(grep -o 'accuracy [0-9.]*' "$log" | cut -d' ' -f2)" >>"$peer"
        done
    done
fi
python3 - "$out" "$peer" "$ensemble" "$adapted" $seeds <<'PY'
import json, statistics, sys
out, peer, ensemble, adapted, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
rows, means = {}, []
for seed in seeds:
    summary = json.load(open(f"{out}/seed-{seed}/summary.json"))
    accuracies = []
    for fold in summary["folds"]:
        speaker = fold["validation_speakers"][0]
        m = fold["metrics"]
        rows.setdefault(speaker, []).append((m["accuracy"], m.get("macroROCAUC") or m.get("macro_roc_auc")))
        accuracies.append(m["accuracy"])
    means.append(statistics.mean(accuracies))
torch = {}
for line in open(peer):
    seed, speaker, accuracy = line.split("\t")
    if accuracy.strip():
        torch.setdefault(speaker, []).append(float(accuracy))
print(f"LOSO over {len(rows)} speakers × seeds {' '.join(seeds)}" + (" (PyTorch peer beside)" if torch else ""))
for speaker, values in sorted(rows.items()):
    accuracies = [a for a, _ in values]
    aucs = [u for _, u in values if u is not None]
    line = f"  {speaker:10s} accuracy {statistics.mean(accuracies):.3f} ({', '.join(f'{a:.3f}' for a in accuracies)})"
    if aucs:
        line += f"  macro ROC-AUC {statistics.mean(aucs):.4f}"
    if speaker in torch:
        line += f"  | PyTorch {statistics.mean(torch[speaker]):.3f} ({', '.join(f'{a:.3f}' for a in torch[speaker])})"
    print(line)
spread = statistics.stdev(means) if len(means) > 1 else 0.0
print(f"digits-dist LOSO mean {statistics.mean(means):.3f} ± {spread:.3f} (per-seed means {', '.join(f'{m:.3f}' for m in means)})")
averaged = {speaker: (float(plain), float(adapt)) for speaker, plain, adapt in (line.rstrip("\n").split("\t") for line in open(ensemble))}
if averaged:
    print(f"the {len(seeds)} seeds' models averaged per fold: LOSO {statistics.mean(a for a, _ in averaged.values()):.3f} ("
          + ", ".join(f"{speaker} {a:.3f}" for speaker, (a, _) in sorted(averaged.items())) + ")")
adapted_rows = [line.rstrip("\n").split("\t") for line in open(adapted)]
if adapted_rows:
    by_seed, by_speaker = {}, {}
    for seed, speaker, accuracy in adapted_rows:
        by_seed.setdefault(seed, []).append(float(accuracy))
        by_speaker.setdefault(speaker, []).append(float(accuracy))
    adapted_means = [statistics.mean(v) for v in by_seed.values()]
    adapted_spread = statistics.stdev(adapted_means) if len(adapted_means) > 1 else 0.0
    print(f"BatchNorm adapted to each held-out speaker's clips (evaluate --adapt-batchnorm, transductive): LOSO "
          f"{statistics.mean(adapted_means):.3f} ± {adapted_spread:.3f} ("
          + ", ".join(f"{speaker} {statistics.mean(v):.3f}" for speaker, v in sorted(by_speaker.items())) + ")")
    if averaged:
        print(f"  the {len(seeds)} seeds' models averaged, each adapted: LOSO {statistics.mean(b for _, b in averaged.values()):.3f} ("
              + ", ".join(f"{speaker} {b:.3f}" for speaker, (_, b) in sorted(averaged.items())) + ")")
if torch:
    per_seed = {}
    for line in open(peer):
        seed, speaker, accuracy = line.split("\t")
        if accuracy.strip():
            per_seed.setdefault(seed, []).append(float(accuracy))
    torch_means = [statistics.mean(v) for v in per_seed.values()]
    torch_spread = statistics.stdev(torch_means) if len(torch_means) > 1 else 0.0
    print(f"PyTorch     LOSO mean {statistics.mean(torch_means):.3f} ± {torch_spread:.3f}")
PY
