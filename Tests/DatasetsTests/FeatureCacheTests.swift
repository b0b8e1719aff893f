import Audio
@testable import Datasets
import Foundation
import XCTest

final class FeatureCacheTests: XCTestCase {
    var settings = AudioSettings()

    /// A small dataset of real WAVs at several rates and lengths, plus one broken file.
    func makeDataset(in root: String) throws -> Dataset {
        var clips: [Clip] = []
        for (i, (rate, seconds)) in [(8000, 0.5), (22050, 0.3), (48000, 1.2), (16000, 0.05)].enumerated() {
            let n = Int(Double(rate) * seconds)
            let samples = (0..<n).map { Float(0.4 * sin(Double($0) * Double(200 + 100 * i) * 2 * .pi / Double(rate))) }
            let path = "\(root)/\(i)_s\(i % 2)_0.wav"
            try AudioFile.writeWAV(path: path, samples: samples, sampleRate: rate)
            clips.append(Clip(path: path, label: i, speaker: "s\(i % 2)"))
        }
        let broken = "\(root)/9_s0_1.wav"
        try Data("RIFF????WAVEjunk".utf8).write(to: URL(fileURLWithPath: broken))
        clips.append(Clip(path: broken, label: 9, speaker: "s0"))
        return Dataset(root: root, layout: .fsdd, clips: clips)
    }

    func testCacheHoldsExactlyTheExtractorsFeaturesAndSkipsBrokenFiles() throws {
        let root = try temporaryFolder(self)
        let dataset = try makeDataset(in: root)
        var logs: [String] = []
        let cache = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache", threads: 2) { logs.append($0) }
        XCTAssertEqual(cache.clipCount, dataset.clips.count)
        let extractor = LogMelExtractor(settings: settings)
        for (i, clip) in dataset.clips.enumerated() {
            if clip.path.hasSuffix("9_s0_1.wav") {
                XCTAssertEqual(cache.frames(ofClip: i), 0)
                XCTAssertTrue(cache.skipped[i]?.contains("9_s0_1.wav") ?? false, "\(cache.skipped)")
                continue
            }
            let (expected, frames) = try extractor.logMel(path: clip.path)
            XCTAssertEqual(cache.frames(ofClip: i), frames)
            XCTAssertEqual(Array(cache.features(ofClip: i)), expected, clip.path)
        }
        XCTAssertEqual(cache.skipped.count, 1)
        XCTAssertTrue(logs.contains { $0.hasPrefix("building feature cache for 5 clips") }, "\(logs)")
    }

    func testReopeningUsesTheCacheAndChangesRebuildIt() throws {
        let root = try temporaryFolder(self)
        let dataset = try makeDataset(in: root)
        var logs: [String] = []
        let log: (String) -> Void = { logs.append($0) }
        let first = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache", log: log)
        XCTAssertEqual(logs.filter { $0.hasPrefix("building") }.count, 1)
        _ = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache", log: log)
        XCTAssertEqual(logs.filter { $0.hasPrefix("building") }.count, 1, "an unchanged dataset must reuse the cache")

        var other = settings
        other.melBins = 64
        let rebuilt = try FeatureCache.open(dataset: dataset, settings: other, directory: root + "/cache", log: log)
        XCTAssertEqual(rebuilt.melBins, 64)
        XCTAssertTrue(logs.contains { $0.contains("stale or damaged") })

        // A changed file (new contents, new size) also rebuilds.
        try AudioFile.writeWAV(path: dataset.clips[0].path, samples: [Float](repeating: 0.1, count: 12_000), sampleRate: 8000)
        let changed = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache", log: log)
        XCTAssertEqual(logs.filter { $0.hasPrefix("building") }.count, 3)
        XCTAssertEqual(changed.frames(ofClip: 0), LogMelExtractor.frameCount(sampleCount: 33_075, settings: settings))
        XCTAssertEqual(first.path, changed.path, "one cache file per dataset root")
    }

    func testACorruptedCacheIsDetectedAndRebuilt() throws {
        let root = try temporaryFolder(self)
        let dataset = try makeDataset(in: root)
        let path = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache").path
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var flipped = original
        flipped[flipped.count / 2] ^= 0x10
        try flipped.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try FeatureCache(path: path, expectedKey: FeatureCache.cacheKey(dataset: dataset, settings: settings),
                                              clipCount: dataset.clips.count)) {
            XCTAssertEqual("\($0)", "\(path): checksum mismatch")
        }
        try original.prefix(original.count - 100).write(to: URL(fileURLWithPath: path))
        var logs: [String] = []
        let cache = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache") { logs.append($0) }
        XCTAssertTrue(logs.contains { $0.contains("does not match its header") }, "\(logs)")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cache.path)), original)
    }

    func testCropsCopyFramesAndPadWithTheClipsSilenceLevel() throws {
        let root = try temporaryFolder(self)
        let dataset = try makeDataset(in: root)
        let cache = try FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache")
        let clip = 2  // 48 kHz, 1.2 s: 52 frames
        let frames = cache.frames(ofClip: clip)
        let whole = cache.features(ofClip: clip)
        let floor = whole.min()!
        let crop = UnsafeMutablePointer<Float>.allocate(capacity: settings.melBins * 44)
        defer { crop.deallocate() }
        for start in [0, 5, frames - 44, frames - 10, frames] {
            LogMelCrop.copy(from: whole.baseAddress!, melBins: settings.melBins, clipFrames: frames, startFrame: start,
                            frames: 44, padding: cache.silenceLevel(ofClip: clip), into: crop)
            for m in [0, 17, settings.melBins - 1] {
                for t in 0..<44 {
                    let expected = start + t < frames ? whole[m * frames + start + t] : floor
                    XCTAssertEqual(crop[m * 44 + t], expected, "start \(start) mel \(m) frame \(t)")
                }
            }
        }
    }
}
