# Settings that matter for digits-dist under Open MPI; sourced by the launch scripts.

# One OpenBLAS thread per rank: ranks already fill the cores, and OpenBLAS threads on top of them
# oversubscribe the node and slow every GEMM. (digits-dist also pins this itself from
# OMPI_COMM_WORLD_LOCAL_SIZE; the variable covers launchers that do not set it.)
export OPENBLAS_NUM_THREADS=1
# mpirun forwards SIGUSR1 to the ranks (digits-dist's stop-and-checkpoint signal).
export OMPI_MCA_orte_forward_job_control=1
# Shared memory within a node, TCP between nodes unless a faster transport (UCX) is configured.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
