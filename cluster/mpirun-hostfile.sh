#!/usr/bin/env bash
# Plain mpirun across the nodes of a hostfile, without Slurm. `kill -USR1 <mpirun pid>` stops
# at a checkpoint (exit 75); run the same command again to resume.
#   cluster/mpirun-hostfile.sh cluster/hostfile.example configs/amnist.yaml /shared/runs/amnist
set -euo pipefail
hostfile=${1:?hostfile}
config=${2:-configs/amnist.yaml}
run=${3:-runs/amnist}
source "$(dirname "$0")/mpi-env.sh"
exec mpirun --hostfile "$hostfile" --bind-to core --map-by core \
    -x OPENBLAS_NUM_THREADS -x OMPI_MCA_btl -x DIGITS_DIST_CACHE \
    digits-dist train --config "$config" --out "$run" --resume
