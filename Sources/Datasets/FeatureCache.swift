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

    /// Copies frames [startFrame, startFrame + frames) of clip `i` into `out` as (melBins, frames);
    /// frames past the clip's end are the clip's silence level, as zero-padded audio would give.
    public func crop(clip i: Int, startFrame: Int, frames: Int, into out: UnsafeMutablePointer<Float>) {
        let entry = index[i]
        LogMelCrop.copy(from: data + Int(entry.frameOffset) * melBins, melBins: melBins, clipFrames: Int(entry.frames),
                        startFrame: startFrame, frames: frames, padding: entry.floor, into: out)
    }

    /// Opens the cache for `dataset` in `directory`, building it first (with `threads` workers) when
    /// it is missing, damaged, or was made from other settings or files.
    public static func open(dataset: Dataset, settings: AudioSettings, directory: String,
                            threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                            log: (String) -> Void = { _ in }) throws -> FeatureCache {
        let key = try cacheKey(dataset: dataset, settings: settings)
        let path = directory + "/" + fileName(for: dataset)
        if FileManager.default.fileExists(atPath: path) {
            do {
                return try FeatureCache(path: path, expectedKey: key, clipCount: dataset.clips.count)
            } catch {
                log("feature cache \(path) is stale or damaged (\(error)); rebuilding")
            }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try build(dataset: dataset, settings: settings, key: key, path: path, threads: threads, log: log)
        return try FeatureCache(path: path, expectedKey: key, clipCount: dataset.clips.count)
    }

    /// One cache file per dataset root, so a changed dataset replaces its old cache instead of piling up.
    static func fileName(for dataset: Dataset) -> String {
        let name = (dataset.root as NSString).lastPathComponent.filter { $0.isLetter || $0.isNumber || $0 == "-" }
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

    static func dataOffset(clipCount: Int) -> Int {
        (headerBytes + indexEntryBytes * clipCount + 63) / 64 * 64
    }

    /// Writes the cache to a temporary file next to `path`, computing clips on `threads` workers
    /// straight into the mapped file (memory beyond the file stays at a few buffers per worker),
    /// then renames it into place.
    static func build(dataset: Dataset, settings: AudioSettings, key: UInt64, path: String, threads: Int,
                      log: (String) -> Void) throws {
        let clips = dataset.clips
        var skipped = [Int: String]()
        var frames = [Int](repeating: 0, count: clips.count)
        for (i, clip) in clips.enumerated() {
            do {
                let info = try AudioFile.info(path: clip.path)
                let samples = info.sampleRate == settings.sampleRate ? info.frames
                    : Int((Double(info.frames) * Double(settings.sampleRate) / Double(info.sampleRate)).rounded(.up))
                guard samples > 0 else { throw DatasetError(path: clip.path, problem: "has zero samples") }
                frames[i] = LogMelExtractor.frameCount(sampleCount: samples, settings: settings)
            } catch {
                skipped[i] = "\(error)"
            }
        }
        var offsets = [Int](repeating: 0, count: clips.count)
        var totalFrames = 0
        for i in clips.indices { offsets[i] = totalFrames; totalFrames += frames[i] }
        let melBins = settings.melBins
        let dataOffset = Self.dataOffset(clipCount: clips.count)
        let dataBytes = totalFrames * melBins * 4
        let started = Date()
        log("building feature cache for \(clips.count) clips (\(dataBytes >> 20) MB) on \(threads) threads")

        let temporary = path + ".tmp-\(getpid())"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DatasetError(path: temporary, problem: "cannot create (\(String(cString: strerror(errno))))") }
        var renamed = false
        defer {
            close(fd)
            if !renamed { unlink(temporary) }
        }
        let mappedBytes = dataOffset + dataBytes
        guard ftruncate(fd, off_t(mappedBytes)) == 0,
              let map = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw DatasetError(path: temporary, problem: "cannot size or map \(mappedBytes) bytes (\(String(cString: strerror(errno))))")
        }
        defer { munmap(map, mappedBytes) }
        let index = (map + headerBytes).bindMemory(to: IndexEntry.self, capacity: clips.count)
        let data = (map + dataOffset).bindMemory(to: Float.self, capacity: totalFrames * melBins)

        let lock = NSLock()
        let workers = max(1, min(threads, clips.count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let extractor = LogMelExtractor(settings: settings)
            for i in stride(from: worker, to: clips.count, by: workers) where frames[i] > 0 {
                let floor: Float
                do {
                    let (values, clipFrames) = try extractor.logMel(path: clips[i].path)
                    guard clipFrames == frames[i] else {
                        throw DatasetError(path: clips[i].path, problem:
                            "decoded \(clipFrames) frames, its header promised \(frames[i]) (truncated?)")
                    }
                    (data + offsets[i] * melBins).update(from: values, count: values.count)
                    floor = values.min() ?? 0
                } catch {
                    lock.lock(); skipped[i] = "\(error)"; lock.unlock()
                    index[i] = IndexEntry(frameOffset: UInt64(offsets[i]), frames: 0, floor: 0)
                    continue
                }
                index[i] = IndexEntry(frameOffset: UInt64(offsets[i]), frames: UInt32(frames[i]), floor: floor)
            }
        }
        for (i, _) in skipped { index[i] = IndexEntry(frameOffset: UInt64(offsets[i]), frames: 0, floor: 0) }

        let skipText = Array(skipped.keys.sorted().map { "\($0)\t\(skipped[$0]!)\n" }.joined().utf8)
        var crc = CRC32C.update(0, map + headerBytes, count: mappedBytes - headerBytes)
        crc = skipText.withUnsafeBytes { CRC32C.update(crc, $0.baseAddress ?? UnsafeRawPointer(map), count: skipText.count) }
        let header = map
        header.copyMemory(from: magic, byteCount: 8)
        header.storeBytes(of: version, toByteOffset: 8, as: UInt32.self)
        header.storeBytes(of: UInt32(melBins), toByteOffset: 12, as: UInt32.self)
        header.storeBytes(of: UInt64(clips.count), toByteOffset: 16, as: UInt64.self)
        header.storeBytes(of: UInt64(totalFrames), toByteOffset: 24, as: UInt64.self)
        header.storeBytes(of: key, toByteOffset: 32, as: UInt64.self)
        header.storeBytes(of: UInt64(skipText.count), toByteOffset: 40, as: UInt64.self)
        header.storeBytes(of: crc, toByteOffset: 48, as: UInt32.self)
        guard msync(map, mappedBytes, MS_SYNC) == 0,
              lseek(fd, off_t(mappedBytes), SEEK_SET) >= 0,
              skipText.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == skipText.count,
              fsync(fd) == 0 else {
            throw DatasetError(path: temporary, problem: "cannot write (\(String(cString: strerror(errno))))")
        }
        guard rename(temporary, path) == 0 else {
            throw DatasetError(path: path, problem: "cannot rename into place (\(String(cString: strerror(errno))))")
        }
        renamed = true
        let seconds = Date().timeIntervalSince(started)
        log(String(format: "feature cache written: %@ (%.1f s, %.0f clips/s, %d skipped)",
                   path, seconds, Double(clips.count) / max(seconds, 1e-9), skipped.count))
    }
}
