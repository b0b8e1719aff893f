#!/usr/bin/env bash
# Two hosts over TCP against the same two ranks over shared memory on the same cores. Makes two network
# namespace hosts (scripts/netns-hosts.sh) with a bare link, then with both ends of each link shaped to RATE,
# and runs `bench train` (one rank per host, --threads 1, --bind-to none) across them and on this host,
# interleaved REPEATS times; prints the medians, the ratio TCP/shared memory for each link, and
# `bench allreduce` across the shaped hosts (the all-reduce's exposed and hidden time per bucket size).
# Needs root.
#   scripts/bench-hosts.sh [REPEATS] [RATE] [bench train options ...]
#   scripts/bench-hosts.sh 5 1gbit                          # resnet18-w16, batch 32 per rank (the issue's figures)
#   scripts/bench-hosts.sh 3 1gbit --arch resnet50 --width 64 --steps 5
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/.build/release/digits-dist
if [ "${1:-}" = --inside ]; then
    # Inside netns-hosts.sh: KEY-prefixed samples/s lines, one per run.
    shift
    label=$1 repeats=$2
    shift 2
    network=(--mca btl tcp,self --mca oob_tcp_if_include "$DIGITS_DIST_NETWORK" --mca btl_tcp_if_include "$DIGITS_DIST_NETWORK")
    read -r first _ <<<"$DIGITS_DIST_HOSTS"
    rate() { grep -o '[0-9.]* samples/s global' | cut -d' ' -f1; }
    for _ in $(seq "$repeats"); do
        echo "shm-$label=$(mpirun --allow-run-as-root --bind-to none -n 2 "$bin" bench train --threads 1 --no-peak "$@" | rate)"
        echo "tcp-$label=$("$DIGITS_DIST_ON_HOST" "$first" mpirun --allow-run-as-root --hostfile "$DIGITS_DIST_HOSTFILE" \
            --bind-to none "${network[@]}" -n 2 "$bin" bench train --threads 1 --no-peak "$@" | rate)"
    done
    if [ "$label" = shaped ]; then
        "$DIGITS_DIST_ON_HOST" "$first" mpirun --allow-run-as-root --hostfile "$DIGITS_DIST_HOSTFILE" --bind-to none \
            "${network[@]}" -n 2 "$bin" bench allreduce --threads 1 >&2
    fi
    exit 0
fi
repeats=${1:-5} rate=${2:-1gbit}
shift 2 || shift $#
[ -x "$bin" ] || scripts/setup.sh
runs=()
runs+=($(scripts/netns-hosts.sh "$0" --inside bare "$repeats" "$@" | grep "=")) 
runs+=($(scripts/netns-hosts.sh --rate "$rate" "$0" --inside shaped "$repeats" "$@" | grep "="))
python3 scripts/medians.py --ratio tcp-bare shm-bare "two hosts over the bare link / shared memory" \
    --ratio tcp-shaped shm-shaped "two hosts over links shaped to $rate / shared memory" "${runs[@]}"
