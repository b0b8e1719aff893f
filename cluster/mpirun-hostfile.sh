#!/usr/bin/env bash
# Plain mpirun across the nodes of a hostfile, without Slurm. Options after RUN_DIR go to
# `digits-dist train`. `kill -USR1 <mpirun pid>` stops at a checkpoint (exit 75); run the same command
# again to resume. The run folder and the feature cache (DIGITS_DIST_CACHE, default RUN_DIR/../.cache)
# must be on a file system every node sees; DIGITS_DIST_NETWORK picks the network (cluster/mpi-env.sh).
#   cluster/mpirun-hostfile.sh HOSTFILE CONFIG RUN_DIR [digits-dist train options ...]
#   cluster/mpirun-hostfile.sh cluster/hostfile.example configs/amnist.yaml /shared/runs/amnist --threads 1
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: cluster/mpirun-hostfile.sh HOSTFILE CONFIG RUN_DIR [digits-dist train options ...]" >&2; exit 2; }
hostfile=$1
config=$2
run=$3
shift 3
[ -f "$hostfile" ] || { echo "error: hostfile $hostfile: no such file" >&2; exit 2; }
[ -f "$config" ] || { echo "error: config $config: no such file" >&2; exit 2; }
source "$(dirname "$0")/mpi-env.sh"
export DIGITS_DIST_CACHE=${DIGITS_DIST_CACHE:-$(dirname "$run")/.cache}
exec mpirun --hostfile "$hostfile" --bind-to core --map-by core \
    -x OPENBLAS_NUM_THREADS -x OMPI_MCA_btl -x DIGITS_DIST_CACHE \
    digits-dist train --config "$config" --out "$run" --resume "$@"
