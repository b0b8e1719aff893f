import Audio
import Foundation

/// Writes a feature cache file (layout in `FeatureCache`). The clips' frame counts come from their
/// headers, so every clip's place in the file is known up front; features then arrive clip by clip in
/// any order — from worker threads, or gathered from other MPI ranks — straight into the mapped file,
/// and `finish()` checksums it and renames it into place. Memory beyond the file stays at a few
/// buffers per worker.
public final class FeatureCacheWriter {
    public let path: String
    public let settings: AudioSettings
    public let clips: [Clip]
    /// Frames of each clip (0 for clips already known to be unusable).
    public let frames: [Int]
    public var dataBytes: Int { totalFrames * settings.melBins * 4 }
    let offsets: [Int]
    let totalFrames: Int
    let key: UInt64
    let temporary: String
    let fd: Int32
    let mapping: UnsafeMutableRawPointer
    let mappedBytes: Int
    let index: UnsafeMutablePointer<FeatureCache.IndexEntry>
    let data: UnsafeMutablePointer<Float>
    private let lock = NSLock()
    private var skipped: [Int: String] = [:]
    private var finished = false
    private let started = Date()

    public init(dataset: Dataset, settings: AudioSettings, directory: String) throws {
        self.settings = settings
        clips = dataset.clips
        key = try FeatureCache.cacheKey(dataset: dataset, settings: settings)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/" + FeatureCache.fileName(for: dataset)
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
        var total = 0
        for i in clips.indices { offsets[i] = total; total += frames[i] }
        self.frames = frames
        self.offsets = offsets
        totalFrames = total

        let dataOffset = FeatureCache.dataOffset(clipCount: clips.count)
        mappedBytes = dataOffset + total * settings.melBins * 4
        temporary = path + ".tmp-\(getpid())"
        fd = open(temporary, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DatasetError(path: temporary, problem: "cannot create (\(String(cString: strerror(errno))))") }
        // Reserve the blocks now: a full disk fails here with ENOSPC, not later as SIGBUS on a mapped write.
        // posix_fallocate returns its error instead of setting errno.
        let reserved = posix_fallocate(fd, 0, off_t(mappedBytes))
        let map = reserved == 0 ? mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED
        guard let map, map != MAP_FAILED else {
            let problem = reserved != 0
                ? "cannot reserve \(mappedBytes) bytes for the cache (\(String(cString: strerror(reserved))))"
                : "cannot map \(mappedBytes) bytes (\(String(cString: strerror(errno))))"
            close(fd)
            unlink(temporary)
            throw DatasetError(path: temporary, problem: problem)
        }
        mapping = map
        index = (map + FeatureCache.headerBytes).bindMemory(to: FeatureCache.IndexEntry.self, capacity: clips.count)
        data = (map + dataOffset).bindMemory(to: Float.self, capacity: total * settings.melBins)
        for i in clips.indices { index[i] = FeatureCache.IndexEntry(frameOffset: UInt64(offsets[i]), frames: 0, floor: 0) }
    }

    deinit {
        munmap(mapping, mappedBytes)
        close(fd)
        if !finished { unlink(temporary) }
    }

    /// Clip `i`'s features computed with `extractor` (one per thread); nil with the reason when the
    /// file is unusable or decodes to another length than its header promised.
    public static func features(of clip: Clip, expectedFrames: Int, extractor: LogMelExtractor) -> Result<[Float], DatasetError> {
        do {
            let (values, frames) = try extractor.logMel(path: clip.path)
            guard frames == expectedFrames else {
                return .failure(DatasetError(path: clip.path, problem: "decoded \(frames) frames, its header promised \(expectedFrames) (truncated?)"))
            }
            return .success(values)
        } catch let error as AudioError {
            return .failure(DatasetError(path: clip.path, problem: error.problem))
        } catch {
            return .failure(DatasetError(path: clip.path, problem: "\(error)"))
        }
    }

    /// Computes and stores clip `i` (thread-safe for distinct clips).
    public func compute(clip i: Int, with extractor: LogMelExtractor) {
        guard frames[i] > 0 else { return }
        switch Self.features(of: clips[i], expectedFrames: frames[i], extractor: extractor) {
        case .success(let values): values.withUnsafeBufferPointer { store(clip: i, values: $0) }
        case .failure(let error): skip(clip: i, reason: "\(error)")
        }
    }

    /// Stores clip `i`'s (melBins, frames[i]) features.
    public func store(clip i: Int, values: UnsafeBufferPointer<Float>) {
        precondition(values.count == frames[i] * settings.melBins, "clip \(i): wrong feature count")
        (data + offsets[i] * settings.melBins).update(from: values.baseAddress!, count: values.count)
        index[i] = FeatureCache.IndexEntry(frameOffset: UInt64(offsets[i]), frames: UInt32(frames[i]), floor: values.min() ?? 0)
    }

    public func skip(clip i: Int, reason: String) {
        lock.lock()
        skipped[i] = reason
        lock.unlock()
    }

    /// Checksums the file, writes its header and the skip list, fsyncs and renames it into place; returns it mapped.
    public func finish(log: (String) -> Void = { _ in }) throws -> FeatureCache {
        for i in clips.indices where skipped[i] != nil {
            index[i] = FeatureCache.IndexEntry(frameOffset: UInt64(offsets[i]), frames: 0, floor: 0)
        }
        let skipText = Array(skipped.keys.sorted().map { "\($0)\t\(skipped[$0]!)\n" }.joined().utf8)
        var crc = CRC32C.update(0, mapping + FeatureCache.headerBytes, count: mappedBytes - FeatureCache.headerBytes)
        crc = skipText.withUnsafeBytes { CRC32C.update(crc, $0.baseAddress ?? UnsafeRawPointer(mapping), count: skipText.count) }
        let header = mapping
        header.copyMemory(from: FeatureCache.magic, byteCount: 8)
        header.storeBytes(of: FeatureCache.version, toByteOffset: 8, as: UInt32.self)
        header.storeBytes(of: UInt32(settings.melBins), toByteOffset: 12, as: UInt32.self)
        header.storeBytes(of: UInt64(clips.count), toByteOffset: 16, as: UInt64.self)
        header.storeBytes(of: UInt64(totalFrames), toByteOffset: 24, as: UInt64.self)
        header.storeBytes(of: key, toByteOffset: 32, as: UInt64.self)
        header.storeBytes(of: UInt64(skipText.count), toByteOffset: 40, as: UInt64.self)
        header.storeBytes(of: crc, toByteOffset: 48, as: UInt32.self)
        guard msync(mapping, mappedBytes, MS_SYNC) == 0,
              lseek(fd, off_t(mappedBytes), SEEK_SET) >= 0,
              skipText.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == skipText.count,
              fsync(fd) == 0 else {
            throw DatasetError(path: temporary, problem: "cannot write (\(String(cString: strerror(errno))))")
        }
        guard rename(temporary, path) == 0 else {
            throw DatasetError(path: path, problem: "cannot rename into place (\(String(cString: strerror(errno))))")
        }
        finished = true
        let seconds = Date().timeIntervalSince(started)
        log(String(format: "feature cache written: %@ (%.1f s, %.0f clips/s, %d skipped)",
                   path, seconds, Double(clips.count) / max(seconds, 1e-9), skipped.count))
        return try FeatureCache(path: path, expectedKey: key, clipCount: clips.count)
    }
}
