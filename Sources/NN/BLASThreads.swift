import CBLAS

public enum BLAS {
    /// OpenBLAS threads for this process: one per rank when several ranks share a node, else the cores.
    public static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(max(1, count))) }
}
