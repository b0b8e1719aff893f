/// What the launcher that started this process says about the job: Open MPI's `mpirun` sets
/// `OMPI_COMM_WORLD_*`; Slurm's `srun --mpi=pmix` sets none of those, only `SLURM_STEP_*`; a plain process
/// has neither. Read from the environment, so it is known before MPI starts and can be checked against
/// what MPI reports (a launch that starts N singletons instead of one N-rank job shows up that way).
public struct Launcher: Equatable, Sendable {
    /// Ranks the launcher started in this job.
    public var worldSize: Int
    /// Ranks the launcher started on this node.
    public var localSize: Int
}

extension Launcher {
    public init(environment: [String: String]) {
        if let size = environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) {
            worldSize = size
            localSize = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        } else if environment["SLURM_STEP_ID"] != nil, let size = environment["SLURM_STEP_NUM_TASKS"].flatMap(Int.init) {
            // A task of an srun step (the batch shell has SLURM_PROCID and the job's SLURM_NTASKS, but no step).
            worldSize = size
            let node = environment["SLURM_NODEID"].flatMap(Int.init) ?? 0
            localSize = environment["SLURM_STEP_TASKS_PER_NODE"].flatMap { Self.tasks(onNode: node, of: $0) } ?? 1
        } else {
            worldSize = 1
            localSize = 1
        }
    }

    /// Slurm's compressed per-node task counts, "2(x3),1" = 2, 2, 2, 1: the count on node `node`.
    static func tasks(onNode node: Int, of list: String) -> Int? {
        var first = 0
        for group in list.split(separator: ",") {
            let parts = group.split(separator: "(")
            guard let count = Int(parts[0]) else { return nil }
            let repeats = parts.count > 1 ? Int(parts[1].dropFirst().dropLast()) ?? 1 : 1
            if node < first + repeats { return count }
            first += repeats
        }
        return nil
    }
}
