import Foundation

/// Run logging on standard error, so standard output stays machine-readable (JSON, tables).
/// Under MPI only rank 0 logs; other ranks speak only on errors, prefixed with their rank.
public enum Log {
    /// This process's MPI rank; set once at start-up.
    nonisolated(unsafe) public static var rank = 0

    public static func info(_ message: String) {
        guard rank == 0 else { return }
        clearProgress()
        write("digits-dist: " + message)
    }

    /// On a terminal, progress is one bar redrawn in place; elsewhere (Slurm logs) it is skipped, and
    /// `info` lines at intervals carry it.
    static let isTerminal = isatty(STDERR_FILENO) != 0
    nonisolated(unsafe) static var progressShown = false

    /// Whether this process draws a progress bar (rank 0 on a terminal).
    static var showsProgress: Bool { rank == 0 && isTerminal }

    /// Redraws the progress bar: `done` of `total`, then `status`.
    static func progress(done: Int, total: Int, status: String) {
        guard rank == 0, isTerminal, total > 0 else { return }
        let width = 24, filled = width * done / total
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K\(bar) \(status)".utf8))
        progressShown = true
    }

    static func clearProgress() {
        guard progressShown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        progressShown = false
    }

    public static func error(_ message: String) {
        clearProgress()
        write(rank == 0 ? "digits-dist: error: " + message : "digits-dist[rank \(rank)]: error: " + message)
    }

    /// `error` as one line: our errors say what they say; Foundation's file-system errors, which print as a
    /// dump of their userInfo, become "PATH: REASON" in the system's words.
    public static func error(_ error: any Error) {
        self.error(oneLine(error))
    }

    static func oneLine(_ error: any Error) -> String {
        let bridged = error as NSError
        guard bridged.domain == NSCocoaErrorDomain,
              let path = bridged.userInfo[NSFilePathErrorKey] as? String ?? (bridged.userInfo[NSURLErrorKey] as? URL)?.path
        else { return "\(error)" }
        guard let posix = (bridged.userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }),
              posix.domain == NSPOSIXErrorDomain else {
            return "\(path): \(bridged.localizedDescription)"
        }
        var isFolder: ObjCBool = false
        switch Int32(posix.code) {
        case EEXIST where FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && !isFolder.boolValue:
            return "\(path): is a file, where a folder is needed"
        case ENOTDIR:
            return "\(path): a part of this path is a file, where a folder is needed"
        case let code:
            return "\(path): \(String(cString: strerror(code)))"
        }
    }

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

extension Log {
    /// Progress lines for logs that are not a terminal: about twenty per run, plus the first and last step.
    static func shouldReport(step: Int, of total: Int) -> Bool {
        !isTerminal && (step == 1 || step == total || step % max(1, total / 20) == 0)
    }

    /// "1:02:03" or "2:03".
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
