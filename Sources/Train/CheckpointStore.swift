import Foundation

/// The checkpoints of one fold run: `checkpoints/step-NNNNNNNN.ckpt` (the newest `keep` of them),
/// `best.ckpt` (best validation metric so far) and `final.ckpt`, all in the fold's folder.
public struct CheckpointStore {
    public let directory: String
    public let keep: Int
    var folder: String { directory + "/checkpoints" }
    public var finalPath: String { directory + "/final.ckpt" }
    public var bestPath: String { directory + "/best.ckpt" }

    public init(directory: String, keep: Int) {
        self.directory = directory
        self.keep = keep
    }

    /// Writes the step checkpoint and removes the oldest beyond `keep`.
    public func save(_ checkpoint: Checkpoint) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try checkpoint.write(to: folder + String(format: "/step-%08d.ckpt", checkpoint.metadata.step))
        for old in stepFiles().dropFirst(keep) { try? FileManager.default.removeItem(atPath: old) }
    }

    /// Writes `best.ckpt` (the best validation so far).
    public func saveBest(_ checkpoint: Checkpoint) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try checkpoint.write(to: bestPath)
    }

    /// Step checkpoints, newest first.
    func stepFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".ckpt") }.sorted(by: >).map { folder + "/" + $0 }
    }

    /// The newest step checkpoint that verifies; each damaged one is reported through `log` and passed over.
    public func newestValid(log: (String) -> Void) -> String? {
        for path in stepFiles() {
            do {
                _ = try Checkpoint.read(from: path)
                return path
            } catch {
                log("skipping checkpoint \(error)")
            }
        }
        return nil
    }
}
