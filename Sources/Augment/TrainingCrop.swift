import Datasets
import Foundation

/// How one training crop is made from a clip's (melBins, clipFrames) log-mel: the window (a random one of
/// a long clip; a short clip at `shortClipPosition`, moved by up to ± `timeShiftFrames`, its edges trimmed by
/// up to `trimFrames`), the speaker
/// augmentations (the normalisation by the clip's statistics, as inference normalises, after the voice and
/// channel changes, moved by what they did to the crop, and before SpecAugment's masks).
public struct TrainingCrop: Sendable {
    public var melBins: Int
    public var frames: Int
    public var shortClipPosition: LogMelCrop.ShortClipPosition
    public var timeShiftFrames: Int
    public var augmentation: SpeakerAugmentation
    public var normalization: SpectrogramNormalization
    /// A clip that fits the crop loses up to this many frames of its start and, drawn apart, of its end (never
    /// more than a quarter of it each), set to its silence level: the word as a tighter endpointer cuts it.
    public var trimFrames = 0

    public init(melBins: Int, frames: Int, shortClipPosition: LogMelCrop.ShortClipPosition, timeShiftFrames: Int,
                augmentation: SpeakerAugmentation, normalization: SpectrogramNormalization) {
        self.melBins = melBins
        self.frames = frames
        self.shortClipPosition = shortClipPosition
        self.timeShiftFrames = timeShiftFrames
        self.augmentation = augmentation
        self.normalization = normalization
    }

    /// Writes the crop starting at clip frame `start` into `out` (melBins·frames floats); `rng` is the
    /// crop's generator (`SpeakerAugmentation.generator`), `scratch` holds 2·melBins·frames floats.
    public func make(clip: UnsafePointer<Float>, clipFrames: Int, silence: Float, start: Int, rng: inout SplitMix64,
                     scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        var offset = shortClipPosition.offset(clip: clip, melBins: melBins, clipFrames: clipFrames, frames: frames)
        if timeShiftFrames > 0 && clipFrames < frames {
            let shift = rng.nextInt(below: 2 * timeShiftFrames + 1) - timeShiftFrames
            offset = max(0, min(frames - clipFrames, offset + shift))
        }
        LogMelCrop.copy(from: clip, melBins: melBins, clipFrames: clipFrames, startFrame: start, offset: offset,
                        frames: frames, padding: silence, into: out)
        let trimmed = trimFrames > 0 && clipFrames <= frames
        if trimmed {
            let limit = min(trimFrames, clipFrames / 4)
            let head = rng.nextInt(below: limit + 1), tail = rng.nextInt(below: limit + 1)
            for m in 0..<melBins {
                let row = out + m * frames + offset
                row.update(repeating: silence, count: head)
                (row + clipFrames - tail).update(repeating: silence, count: tail)
            }
        }
        guard !augmentation.isIdentity || trimmed else {
            normalization.apply(out, melBins: melBins, frames: frames, clip: clip, clipFrames: clipFrames)
            return
        }
        augmentation.applyVoiceAndChannel(out, melBins: melBins, frames: frames, scratch: scratch, rng: &rng)
        let copied = LogMelCrop.CopiedFrames(clipFrames: clipFrames, startFrame: start, offset: offset, frames: frames)
        normalization.apply(out, melBins: melBins, frames: frames, clip: clip, clipFrames: clipFrames, changed: copied)
        augmentation.applyMasks(out, melBins: melBins, frames: frames, rng: &rng)
    }

    /// Milliseconds to make `batch` crops of a synthetic 0.6 s word in silence, the median of `repeats`
    /// batches: what the crops of one training step cost a rank.
    public func millisecondsPerBatch(_ batch: Int, repeats: Int = 21) -> Double {
        let clipFrames = frames * 3 / 5
        let clip = UnsafeMutablePointer<Float>.allocate(capacity: melBins * clipFrames)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * melBins * frames)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: melBins * frames)
        defer { [clip, scratch, out].forEach { $0.deallocate() } }
        var values = SplitMix64(seed: 1)
        for i in 0..<(melBins * clipFrames) { clip[i] = -60 + 50 * values.nextFloat() }
        var times: [Double] = []
        for repeat_ in 0..<repeats {
            let started = DispatchTime.now().uptimeNanoseconds
            for position in 0..<batch {
                var rng = SpeakerAugmentation.generator(seed: 1, epoch: repeat_, position: position)
                make(clip: clip, clipFrames: clipFrames, silence: -60, start: 0, rng: &rng, scratch: scratch, into: out)
            }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
        }
        return times.sorted()[repeats / 2]
    }
}
