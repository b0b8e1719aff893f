import Audio
import Datasets
import Foundation

/// A self-describing, checksummed checkpoint: what a run needs to continue exactly, or a model to predict.
///
/// File layout (little-endian):
/// ```
/// magic "DDCKPT01" | version u32 | metadata bytes u32 | payload bytes u64 | crc32c u32 | reserved u32
/// metadata  JSON (CheckpointMetadata)
/// payload   Float32 sections back to back (parameters, buffers, optimizer moments, ...), as listed in the metadata
/// ```
/// The CRC-32C covers metadata and payload. Writes go to a temporary file that is fsync'ed, renamed
/// into place and its folder fsync'ed, so a crash leaves either the old file or the new one.
public struct Checkpoint {
    public static let magic = Array("DDCKPT01".utf8)
    public static let version: UInt32 = 1
    static let headerBytes = 32

    public var metadata: CheckpointMetadata
    /// Named Float32 arrays, in the metadata's order.
    public var sections: [(name: String, values: [Float])]

    public init(metadata: CheckpointMetadata, sections: [(name: String, values: [Float])]) {
        self.metadata = metadata
        self.sections = sections
    }

    public func section(_ name: String) -> [Float]? { sections.first { $0.name == name }?.values }

    /// Writes the file atomically (temporary file, fsync, rename, folder fsync).
    public func write(to path: String) throws {
        var metadata = self.metadata
        metadata.sections = sections.map { CheckpointMetadata.Section(name: $0.name, count: $0.values.count) }
        let json = try JSONEncoder.sorted.encode(metadata)
        let payloadBytes = sections.reduce(0) { $0 + $1.values.count * 4 }
        var crc = json.withUnsafeBytes { CRC32C.update(0, $0.baseAddress!, count: $0.count) }
        for section in sections {
            crc = section.values.withUnsafeBytes { CRC32C.update(crc, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: $0.count) }
        }
        var header = [UInt8](repeating: 0, count: Self.headerBytes)
        header.replaceSubrange(0..<8, with: Self.magic)
        header.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: UInt32(json.count).littleEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: UInt64(payloadBytes).littleEndian, toByteOffset: 16, as: UInt64.self)
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 24, as: UInt32.self)
        }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CheckpointError(path: path, problem: "cannot create \(temporary): \(errnoText())") }
        var done = false
        defer {
            if !done { close(fd); unlink(temporary) }
        }
        func put(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else { throw CheckpointError(path: path, problem: "cannot write: \(errnoText())") }
                offset += written
            }
        }
        try header.withUnsafeBytes(put)
        try json.withUnsafeBytes(put)
        for section in sections where !section.values.isEmpty { try section.values.withUnsafeBytes(put) }
        guard fsync(fd) == 0 else { throw CheckpointError(path: path, problem: "cannot fsync: \(errnoText())") }
        guard close(fd) == 0 else { throw CheckpointError(path: path, problem: "cannot close: \(errnoText())") }
        done = true
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CheckpointError(path: path, problem: "cannot rename into place: \(errnoText())")
        }
        let folder = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY)
        if folder >= 0 { fsync(folder); close(folder) }
    }

    /// Reads and verifies a checkpoint: truncated, altered or foreign files are errors naming the problem.
    public static func read(from path: String) throws -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(path: path, problem: "cannot be read")
        }
        guard data.count >= headerBytes else { throw CheckpointError(path: path, problem: "truncated (\(data.count) bytes)") }
        return try data.withUnsafeBytes { raw -> Checkpoint in
            guard Array(raw.prefix(8)) == magic else { throw CheckpointError(path: path, problem: "not a digits-dist checkpoint") }
            let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard version == Self.version else {
                throw CheckpointError(path: path, problem: "format version \(version), this digits-dist reads \(Self.version)")
            }
            let jsonBytes = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
            let payload = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
            // Compared in UInt64: a damaged size field may exceed what Int holds.
            let declared = UInt64(headerBytes + jsonBytes).addingReportingOverflow(payload)
            guard !declared.overflow, declared.partialValue == UInt64(data.count) else {
                throw CheckpointError(path: path, problem: "truncated or padded: \(data.count) bytes, the header says "
                    + (declared.overflow ? "more than 2^64" : "\(declared.partialValue)"))
            }
            let payloadBytes = Int(payload)
            guard CRC32C.update(0, raw.baseAddress! + headerBytes, count: jsonBytes + payloadBytes) == crc else {
                throw CheckpointError(path: path, problem: "checksum mismatch (the file is corrupted)")
            }
            let metadata: CheckpointMetadata
            do {
                metadata = try JSONDecoder().decode(CheckpointMetadata.self,
                                                    from: Data(raw[headerBytes..<(headerBytes + jsonBytes)]))
            } catch DecodingError.keyNotFound(let key, _) {
                throw CheckpointError(path: path, problem: "metadata lacks '\(key.stringValue)' (written by another digits-dist version?)")
            } catch {
                throw CheckpointError(path: path, problem: "metadata is not valid JSON of a checkpoint")
            }
            var offset = headerBytes + jsonBytes
            var sections: [(String, [Float])] = []
            for section in metadata.sections {
                guard section.count >= 0, section.count <= (data.count - offset) / 4 else {
                    throw CheckpointError(path: path, problem: "section \(section.name) of \(section.count) values does not fit the payload")
                }
                let values = [Float](unsafeUninitializedCapacity: section.count) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + section.count * 4)]))
                    initialized = section.count
                }
                sections.append((section.name, values))
                offset += section.count * 4
            }
            guard offset == data.count else { throw CheckpointError(path: path, problem: "sections do not fill the payload") }
            return Checkpoint(metadata: metadata, sections: sections)
        }
    }
}

/// What a checkpoint holds besides its arrays: enough to rebuild the model, check a resume is sound and continue.
public struct CheckpointMetadata: Codable, Sendable, Equatable {
    public struct Section: Codable, Sendable, Equatable {
        public var name: String
        public var count: Int
    }

    public var architecture: String
    public var width: Int
    public var classes: Int
    public var dropout: Double
    public var inputHeight: Int
    public var inputWidth: Int
    public var audio: AudioSettings
    /// The resolved run config (YAML).
    public var config: String
    /// Fold index (nil for a run on named validation speakers) and its validation speakers.
    public var fold: Int?
    public var validationSpeakers: [String]
    public var seed: UInt64
    /// Optimizer steps taken; the epoch and the place in its data order follow from it.
    public var step: Int
    /// AdamW's own step count (its bias corrections).
    public var optimizerStep: Int
    /// Sum of this epoch's step losses so far, so the epoch's mean loss is the same after a resume.
    public var epochLossSum: Double
    /// Hash of the dataset's file list and audio settings (the feature cache key).
    public var datasetKey: String
    public var ranks: Int
    /// The arithmetic of the training steps ("fp32" or "bf16"); nil in checkpoints written before mixed
    /// precision existed, which trained in Float32.
    public var precision: String?
    /// The latest validation, and the best so far (by `prediction.metric`).
    public var metrics: ClassificationMetrics?
    public var bestMetrics: ClassificationMetrics?
    public var sections: [Section] = []
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)".escapingControlCharacters }
}

func errnoText() -> String { String(cString: strerror(errno)) }

extension JSONEncoder {
    /// Stable key order, so the same state always gives the same bytes.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
