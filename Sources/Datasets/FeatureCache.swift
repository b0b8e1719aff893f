import Audio
import Foundation

/// Log-mel features of a whole dataset in one file, computed once and memory-mapped for training.
///
/// File layout (little-endian):
/// ```
/// header   64 B   magic "DDFEAT01", version u32, melBins u32, clipCount u64, totalFrames u64,
///                 key u64 (settings + file list), skipTextBytes u64, crc32c u32 (of everything after the header), pad
/// index    16 B × clipCount   frameOffset u64, frames u32 (0 = skipped), floor f32 (the clip's silence level)
/// data     melBins × frames Float32 per clip, row-major (mel, frame), starting 64-byte aligned
/// skips    UTF-8 lines "clipIndex\treason"
/// ```
/// Clips are stored whole; training takes crops with `crop(clip:startFrame:frames:into:)`.
public final class FeatureCache {
    public static let magic = Array("DDFEAT01".utf8)
    public static let version: UInt32 = 1
    static let headerBytes = 64
    static let indexEntryBytes = 16

    public let path: String
    public let melBins: Int
    public let clipCount: Int
    /// Hash of the audio settings and the dataset's files (path, size, modification time).
    public let key: UInt64
    /// Clips that could not be decoded: their features are absent and training must leave them out.
    public let skipped: [Int: String]

    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int
    private let index: UnsafePointer<IndexEntry>
    private let data: UnsafePointer<Float>

    static func dataOffset(clipCount: Int) -> Int {
        (headerBytes + indexEntryBytes * clipCount + 63) / 64 * 64
    }

    struct IndexEntry {
        var frameOffset: UInt64
        var frames: UInt32
        var floor: Float
    }

    deinit { munmap(mapping, mappedBytes) }

    /// Frames of clip `i` (0 when it was skipped).
    public func frames(ofClip i: Int) -> Int { Int(index[i].frames) }

    /// The value clip `i`'s crops are padded with: its minimum, the level silence has after `top_db`.
    public func silenceLevel(ofClip i: Int) -> Float { index[i].floor }

    /// Clip `i`'s features, (melBins, frames) row-major.
    public func features(ofClip i: Int) -> UnsafeBufferPointer<Float> {
        let entry = index[i]
        return UnsafeBufferPointer(start: data + Int(entry.frameOffset) * melBins, count: Int(entry.frames) * melBins)
    }

    /// Opens the cache for `dataset` in `directory`, building it first (with `threads` workers) when
    /// it is missing, damaged, or was made from other settings or files.
    public static func open(dataset: Dataset, settings: AudioSettings, directory: String,
                            threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                            log: (String) -> Void = { _ in }) throws -> FeatureCache {
        if let cache = try openIfCurrent(dataset: dataset, settings: settings, directory: directory, log: log) { return cache }
        let writer = try FeatureCacheWriter(dataset: dataset, settings: settings, directory: directory)
        log("building feature cache for \(dataset.clips.count) clips (\(writer.dataBytes >> 20) MB) on \(threads) threads")
        let workers = max(1, min(threads, dataset.clips.count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let extractor = LogMelExtractor(settings: settings)
            for i in stride(from: worker, to: dataset.clips.count, by: workers) { writer.compute(clip: i, with: extractor) }
        }
        return try writer.finish(log: log)
    }

    /// The cache for `dataset` if one exists that was made from these settings and files and verifies; nil otherwise.
    public static func openIfCurrent(dataset: Dataset, settings: AudioSettings, directory: String,
                                     log: (String) -> Void = { _ in }) throws -> FeatureCache? {
        let path = directory + "/" + fileName(for: dataset)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try FeatureCache(path: path, expectedKey: try cacheKey(dataset: dataset, settings: settings),
                                    clipCount: dataset.clips.count)
        } catch {
            log("feature cache \(path) is stale or damaged (\(error)); rebuilding")
            return nil
        }
    }

    /// One cache file per dataset root, so a changed dataset replaces its old cache instead of piling up.
    static func fileName(for dataset: Dataset) -> String {
        let name = dataset.name.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return "\(name.isEmpty ? "data" : name)-\(String(fnv1a(Array(dataset.root.utf8)), radix: 16)).ddcache"
    }

    /// A hash of the audio settings and of every file's path, size and modification time.
    static func cacheKey(dataset: Dataset, settings: AudioSettings) throws -> UInt64 {
        var text = "v\(version)|\(settings.sampleRate)|\(settings.fftSize)|\(settings.hopSize)|\(settings.melBins)"
            + "|\(settings.minFrequency)|\(settings.maxFrequency)|\(settings.topDB)\n"
        for clip in dataset.clips {
            var info = stat()
            let found = stat(clip.path, &info) == 0
            text += "\(clip.path)|\(clip.label)|\(found ? Int(info.st_size) : -1)|"
                + "\(found ? info.st_mtim.tv_sec : 0).\(found ? info.st_mtim.tv_nsec : 0)\n"
        }
        return fnv1a(Array(text.utf8))
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// Maps and verifies an existing cache file.
    init(path: String, expectedKey: UInt64, clipCount expectedClips: Int) throws {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else { throw DatasetError(path: path, problem: "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        fstat(fd, &info)
        let size = Int(info.st_size)
        guard size >= Self.headerBytes else { throw DatasetError(path: path, problem: "truncated header") }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw DatasetError(path: path, problem: "cannot be memory-mapped")
        }
        var mapped = true
        defer { if mapped { munmap(map, size) } }
        let header = UnsafeRawPointer(map)
        guard Array(UnsafeRawBufferPointer(start: header, count: 8)) == Self.magic else {
            throw DatasetError(path: path, problem: "not a digits-dist feature cache")
        }
        let version = header.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let melBins = Int(header.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let clipCount = Int(header.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let totalFrames = Int(header.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        let key = header.loadUnaligned(fromByteOffset: 32, as: UInt64.self)
        let skipBytes = Int(header.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        let crc = header.loadUnaligned(fromByteOffset: 48, as: UInt32.self)
        guard version == Self.version else { throw DatasetError(path: path, problem: "version \(version), expected \(Self.version)") }
        guard key == expectedKey, clipCount == expectedClips else {
            throw DatasetError(path: path, problem: "made from other settings or files")
        }
        let dataOffset = Self.dataOffset(clipCount: clipCount)
        guard size == dataOffset + totalFrames * melBins * 4 + skipBytes else {
            throw DatasetError(path: path, problem: "size \(size) does not match its header")
        }
        guard CRC32C.update(0, header + Self.headerBytes, count: size - Self.headerBytes) == crc else {
            throw DatasetError(path: path, problem: "checksum mismatch")
        }
        let skipText = String(decoding: UnsafeRawBufferPointer(start: header + size - skipBytes, count: skipBytes), as: UTF8.self)
        var skipped: [Int: String] = [:]
        for line in skipText.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1)
            if parts.count == 2, let i = Int(parts[0]) { skipped[i] = String(parts[1]) }
        }
        self.path = path
        self.melBins = melBins
        self.clipCount = clipCount
        self.key = key
        self.skipped = skipped
        self.mapping = map
        self.mappedBytes = size
        self.index = (header + Self.headerBytes).assumingMemoryBound(to: IndexEntry.self)
        self.data = (header + dataOffset).assumingMemoryBound(to: Float.self)
        mapped = false
    }
}
