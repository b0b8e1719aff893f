import Foundation

/// SIGTERM and SIGUSR1 (Slurm's `--signal=B:USR1@120`, forwarded by mpirun) ask the run to stop: every
/// rank learns of it in the next step's all-reduce, rank 0 writes a checkpoint and all ranks exit
/// with `exitCode`, so a requeued job resumes from there.
public enum StopSignal {
    /// Exit status of a run stopped by a signal after writing its checkpoint (EX_TEMPFAIL: try again).
    public static let exitCode: Int32 = 75

    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    public static var requested: Bool { flag != 0 }

    public static func install() {
        for signalNumber in [SIGTERM, SIGUSR1] {
            signal(signalNumber) { _ in StopSignal.flag = 1 }
        }
    }
}
