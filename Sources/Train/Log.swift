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

extension Log {
    /// Progress lines: about twenty per run, plus the first and last step.
    static func shouldReport(step: Int, of total: Int) -> Bool {
        step == 1 || step == total || step % max(1, total / 20) == 0
    }

    /// "1:02:03" or "2:03".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
