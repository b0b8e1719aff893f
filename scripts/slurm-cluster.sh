#!/usr/bin/env bash
# A real single-node Slurm on this host, for the tests: installs Debian's packages when they are missing,
# writes a slurm.conf for this host into a fresh folder, starts munged (on a private socket), slurmctld and
# slurmd, creates the unprivileged user jobs are submitted as, runs COMMAND with SLURM_CONF and
# DIGITS_DIST_SLURM_USER set, and stops exactly the daemons it started when COMMAND ends, fails or is
# interrupted. Needs root (the daemons, the job user). Nothing outside the fresh folder is configured, so
# a Slurm the host already runs is left alone.
#   scripts/slurm-cluster.sh COMMAND [ARG ...]
#   scripts/slurm-cluster.sh swift test --skip-build --filter SlurmTests
#   scripts/slurm-cluster.sh bash      # a shell with the cluster up: sinfo, sbatch, squeue
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/slurm-cluster.sh COMMAND [ARG ...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "slurm-cluster: needs root (it starts munged, slurmctld and slurmd)" >&2; exit 2; }

installed() {
    command -v munged && command -v slurmctld && command -v slurmd && command -v sbatch \
        && compgen -G "/usr/lib/*/slurm-wlm/mpi_pmix*.so"    # srun --mpi=pmix
}
if ! installed >/dev/null; then
    echo "slurm-cluster: installing munge and Slurm (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins >/dev/null
fi

job_user=${DIGITS_DIST_SLURM_USER:-digits-job}
id "$job_user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$job_user"
[ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey --create

state=$(mktemp -d /tmp/digits-dist-slurm.XXXXXX)
chmod 755 "$state"
mkdir -p "$state/munge" "$state/slurmctld" "$state/slurmd"
chown munge:munge "$state/munge"
chown slurm:slurm "$state/slurmctld"
pids=()
stop() {
    status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ $status -ne 0 ]; then
        echo "slurm-cluster: COMMAND failed ($status); the daemons' logs:" >&2
        tail -n 20 "$state"/*.log >&2 || true
    fi
    rm -rf "$state"
    exit $status
}
trap stop EXIT
trap 'exit 130' INT TERM

runuser -u munge -- munged --foreground --socket="$state/munge/socket" --pid-file="$state/munge/munged.pid" \
    --log-file="$state/munge/munged.log" --seed-file="$state/munge/seed" &
pids+=($!)
for _ in $(seq 50); do [ -S "$state/munge/socket" ] && break; sleep 0.1; done
[ -S "$state/munge/socket" ] || { echo "slurm-cluster: munged did not start: $(cat "$state/munge/munged.log" 2>/dev/null)" >&2; exit 1; }

host=$(hostname -s)
# The node as slurmd sees it (CPUs, sockets, cores, memory), so it never registers as smaller than configured.
node=$(slurmd -C | head -1)
export SLURM_CONF=$state/slurm.conf
cat >"$SLURM_CONF" <<CONF
ClusterName=digitsdist
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
AuthInfo=socket=$state/munge/socket
CredType=cred/munge
StateSaveLocation=$state/slurmctld
SlurmdSpoolDir=$state/slurmd
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobRequeue=1
ReturnToService=2
KillWait=10
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/slurmctld/jobcomp.txt
MailProg=/bin/true
$node State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
chmod 644 "$SLURM_CONF"

slurmctld -D -f "$SLURM_CONF" >"$state/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$state/slurmd.out" 2>&1 &
pids+=($!)
deadline=$((SECONDS + 60))
until sinfo --noheader --nodes="$host" --format=%t 2>/dev/null | grep -qx idle; do
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "slurm-cluster: a daemon exited at start-up" >&2; exit 1; }
    done
    [ $SECONDS -lt $deadline ] || { echo "slurm-cluster: node $host not idle after 60 s: $(sinfo -N 2>&1 | tail -1)" >&2; exit 1; }
    sleep 0.5
done
echo "slurm-cluster: Slurm $(sinfo --version | cut -d' ' -f2) up on $host (SLURM_CONF=$SLURM_CONF), jobs as $job_user"

export DIGITS_DIST_SLURM_USER=$job_user
"$@"
