import Foundation

/// Run logging on standard error, so standard output stays machine-readable (JSON, tables).
/// Under MPI only rank 0 logs; other ranks speak only on errors, prefixed with their rank.
public enum Log {
    /// This process's MPI rank; set once at start-up.
    nonisolated(unsafe) public static var rank = 0

    public static func info(_ message: String) {
        guard rank == 0 else { return }
        write("digits-dist: " + message)
    }

    public static func error(_ message: String) {
        write(rank == 0 ? "digits-dist: error: " + message : "digits-dist[rank \(rank)]: error: " + message)
    }

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
