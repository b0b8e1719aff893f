# Settings that matter for digits-dist under Open MPI; sourced by the launch scripts.

# One OpenBLAS thread per rank: ranks already fill the cores, and OpenBLAS threads on top of them
# oversubscribe the node and slow every GEMM. (digits-dist also pins this itself from
# OMPI_COMM_WORLD_LOCAL_SIZE; the variable covers launchers that do not set it.)
export OPENBLAS_NUM_THREADS=1
# mpirun forwards SIGUSR1 to the ranks (digits-dist's stop-and-checkpoint signal).
export OMPI_MCA_orte_forward_job_control=1
# Shared memory within a node, TCP between nodes unless a faster transport (UCX) is configured.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
# A node that does not answer ssh ends the launch in 10 s with ssh's line naming it, rather than after the
# TCP timeout of minutes; BatchMode: a node that would ask for a password fails the same way.
export OMPI_MCA_plm_rsh_args=${OMPI_MCA_plm_rsh_args:--o ConnectTimeout=10 -o BatchMode=yes}
# DIGITS_DIST_NETWORK: the network the ranks talk over, an interface name (eth1, ib0) or a subnet
# (10.1.0.0/16), for Open MPI's daemons and its TCP transport alike. Unset: Open MPI uses every
# interface but loopback, which goes wrong on nodes with a management network or docker bridges.
if [ -n "${DIGITS_DIST_NETWORK:-}" ]; then
    if [[ $DIGITS_DIST_NETWORK == */* ]]; then
        found=$(ip -o -4 addr show to "$DIGITS_DIST_NETWORK" 2>/dev/null)
    else
        found=$(ip -o link show "$DIGITS_DIST_NETWORK" 2>/dev/null)
    fi
    if [ -z "$found" ]; then
        echo "error: DIGITS_DIST_NETWORK=$DIGITS_DIST_NETWORK: no such interface or subnet on $(hostname -s)" \
             "(it has: $(ip -o -4 addr show | awk '{printf "%s %s  ", $2, $4}'))" >&2
        return 1 2>/dev/null || exit 1
    fi
    export OMPI_MCA_oob_tcp_if_include=$DIGITS_DIST_NETWORK OMPI_MCA_btl_tcp_if_include=$DIGITS_DIST_NETWORK
fi
