# The part every digits-dist batch job shares, sourced by the sbatch files: the arguments, the checks that
# turn a bad submission into one line in the job log and a FAILED job, the MPI settings, and the
# stop-checkpoint-requeue cycle.

error() { echo "error: $*" >&2; exit 1; }

# CONFIG RUN_DIR [digits-dist train options ...] → config, run, train_options; checks them on this node.
parse_job_arguments() {
    [ $# -ge 2 ] || error "usage: sbatch $job_script CONFIG RUN_DIR [digits-dist train options ...] (got $# arguments)"
    config=$1
    run=$2
    shift 2
    train_options=("$@")
    [ -f "$config" ] && [ -r "$config" ] || error "config $config: no such readable file (relative paths start in $PWD)"
    mkdir -p "$run" 2>/dev/null && [ -w "$run" ] || error "run folder $run: cannot create it or write to it as $(id -un)"
    command -v digits-dist >/dev/null || error "digits-dist is not on PATH on $(hostname -s) (PATH=$PATH)"
    source "$cluster/mpi-env.sh" || exit 1
}

# Runs LAUNCHER ARGS... in the background and forwards the batch shell's signals to it. Exit status 75
# means every rank stopped at a checkpoint: after the early warning (USR1: `--signal=B:USR1@N` before the
# time limit, or `scancel --signal=USR1 --batch`) the job requeues itself and the requeued run resumes;
# after SIGTERM (a hard time limit, `scancel`, a pre-emption: Slurm is ending the job) it says how to resume.
run_and_requeue() {
    "$@" &
    local launcher=$! status signal=""
    trap 'signal=USR1; kill -USR1 $launcher' USR1
    trap 'signal=TERM; kill -USR1 $launcher' TERM
    wait $launcher; status=$?
    # wait returns early when a trap fires; wait again for the ranks to write their checkpoint and exit.
    while kill -0 $launcher 2>/dev/null; do wait $launcher; status=$?; done
    if [ $status -eq 75 ] && [ "$signal" = USR1 ]; then
        if scontrol requeue "$SLURM_JOB_ID"; then
            echo "digits-dist stopped at a checkpoint; job $SLURM_JOB_ID requeued: Slurm keeps it PENDING for its" \
                 "requeue delay (120 s) and the next scheduling pass, then it resumes from the checkpoint"
        else
            echo "error: digits-dist stopped at a checkpoint but job $SLURM_JOB_ID could not be requeued;" \
                 "submit the same command again to resume" >&2
        fi
    elif [ $status -eq 75 ]; then
        echo "digits-dist stopped at a checkpoint ($signal: time limit, scancel or pre-emption);" \
             "submit the same command again to resume"
    fi
    exit $status
}
