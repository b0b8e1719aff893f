import Datasets
import Foundation

/// Noise recordings (`augmentation.noise_folder`: a room, a street, a fan, babble) that the noise augmentation
/// adds to training crops instead of generated white noise: their log-mel features, cached and memory-mapped
/// as a dataset's are. A crop's noise is a window of one recording from a random frame, the recording looped
/// when it is shorter than the crop.
///
/// `@unchecked Sendable`: it only reads the mapped cache file, which nothing writes while it is open.
public final class RecordedNoise: @unchecked Sendable, Equatable {
    public let cache: FeatureCache
    /// The recordings the cache could decode.
    public let usable: [Int]
    /// Each usable recording's loudest value (dB), which its powers are taken relative to.
    let peaks: [Float]
    /// Their length, in seconds at `hopSeconds` per frame.
    public func seconds(hopSeconds: Double) -> Double {
        Double(usable.reduce(0) { $0 + cache.frames(ofClip: $1) }) * hopSeconds
    }

    /// Fails with one line naming the cache when none of its recordings could be decoded.
    public init(cache: FeatureCache) throws {
        self.cache = cache
        usable = (0..<cache.clipCount).filter { cache.frames(ofClip: $0) > 0 }
        guard !usable.isEmpty else { throw DatasetError(path: cache.path, problem: "none of its noise recordings is usable") }
        peaks = usable.map { cache.features(ofClip: $0).max()! }
    }

    public static func == (a: RecordedNoise, b: RecordedNoise) -> Bool { a === b }

    /// Writes the power of a random (melBins, frames) window of a random recording into `power`, scaled to a
    /// mean of 1 over the window, so that the caller sets its level; two draws from `rng`.
    func unitPowerWindow(melBins: Int, frames: Int, rng: inout SplitMix64, into power: UnsafeMutablePointer<Float>) {
        let chosen = rng.nextInt(below: usable.count), clip = usable[chosen], peak = peaks[chosen]
        let clipFrames = cache.frames(ofClip: clip), start = rng.nextInt(below: clipFrames)
        let features = cache.features(ofClip: clip).baseAddress!
        var total = 0.0
        for m in 0..<melBins {
            let source = features + m * clipFrames, row = power + m * frames
            var t = 0, from = start
            while t < frames {
                let run = min(frames - t, clipFrames - from)
                for k in 0..<run { row[t + k] = LogMelCrop.relativePower(decibels: source[from + k], peak: peak) }
                t += run
                from = 0
            }
            for k in 0..<frames { total += Double(row[k]) }
        }
        let scale = Float(Double(melBins * frames) / total)
        for i in 0..<(melBins * frames) { power[i] *= scale }
    }
}
