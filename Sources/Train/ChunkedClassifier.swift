import Augment
import Datasets
import Foundation
import NN

/// How clips become chunks and chunk predictions a clip's: the run's inference keys.
public struct InferencePlan: Sendable {
    /// Where a clip shorter than a chunk sits in it: as in the run's training.
    public var shortClipPosition: LogMelCrop.ShortClipPosition = .center
    public var weighting: ChunkedClassifier.ChunkWeighting = .energy
    public var normalization: SpectrogramNormalization = .no
    /// Every chunk is also classified moved by ± this many frames (`prediction.tta_shift_seconds`)…
    public var shiftFrames = 0
    /// … and with its mel axis warped by 1 ± this (`prediction.tta_vocal_tract`); all variants averaged.
    public var warp = 0.0

    public init() {}

    /// (shift in frames, mel-axis warp factor) of each classified variant of a chunk, the chunk itself first.
    var variants: [(shift: Int, warp: Double)] {
        [(0, 1)] + (shiftFrames > 0 ? [(-shiftFrames, 1), (shiftFrames, 1)] : [])
            + (warp > 0 ? [(0, 1 - warp), (0, 1 + warp)] : [])
    }
}

/// Classifies whole clips with a ResNet in eval mode, as `prediction.inference_chunk_method: Fix`:
/// each clip's log-mel is cut into crop-length chunks (the last one padded with the clip's silence
/// level; a clip shorter than one chunk placed as in training), and the chunks' softmax probabilities
/// are averaged: weighted by each chunk's mean power (`prediction.chunk_weighting: Energy`), so the
/// silent tail of a recording does not dilute the chunk that holds the word, or equally (`Equal`).
/// With test-time augmentation every chunk's shifted and warped variants are averaged in too.
public final class ChunkedClassifier {
    /// One clip's features: (melBins, frames) row-major, and the value that pads its last chunk.
    public typealias ClipFeatures = (values: UnsafePointer<Float>, frames: Int, padding: Float)

    let model: ResNet
    let melBins: Int
    let cropFrames: Int
    let batch: Int
    let plan: InferencePlan
    let input: UnsafeMutablePointer<Float>  // [batch][1][melBins][cropFrames]
    let scratch: UnsafeMutablePointer<Float>  // [melBins][cropFrames], for warps
    public static let classes = 10

    /// How the chunks of a clip are averaged (`prediction.chunk_weighting`).
    public enum ChunkWeighting: String, Sendable, CaseIterable {
        case energy = "Energy"
        case equal = "Equal"
    }

    public init(model: ResNet, melBins: Int, cropFrames: Int, batch: Int, plan: InferencePlan) {
        self.model = model
        self.plan = plan
        self.melBins = melBins
        self.cropFrames = cropFrames
        self.batch = min(batch, model.maxBatch)
        input = .allocate(capacity: self.batch * melBins * cropFrames)
        scratch = .allocate(capacity: melBins * cropFrames)
    }

    deinit {
        input.deallocate()
        scratch.deallocate()
    }

    /// Mean probabilities of `count` clips, [count][classes]; `eachChunk` sees every chunk's own
    /// probabilities (clip index, start frame, classes values).
    public func classify(count: Int, clip: (Int) -> ClipFeatures,
                         eachChunk: ((Int, Int, UnsafeBufferPointer<Float>) -> Void)? = nil) throws -> [Float] {
        try classify(count: count, clip: clip, eachChunk: eachChunk, training: false)
    }

    /// Re-fits the model's BatchNorm statistics to the chunks of these `count` clips (every variant, as
    /// `classify` cuts them), without labels: `ResNet.reestimateBatchNormStatistics`.
    public func adaptBatchNorm(count: Int, clip: (Int) -> ClipFeatures) throws {
        try model.reestimateBatchNormStatistics { _ = try classify(count: count, clip: clip, eachChunk: nil, training: true) }
    }

    /// TENT (Wang et al. 2021): `epochs` passes over these clips' chunks, shuffled and in training mode (each
    /// batch normalised by its own statistics), each batch's mean softmax entropy lowered by one Adam step of
    /// the BatchNorm scales and shifts alone; no labels, every other weight as trained. The model grows
    /// confident on the caller's own recordings, so it needs a batch of them; `adaptBatchNorm` then re-fits
    /// the statistics to the adapted network. A pass reads at most `maxChunksPerPass` chunks, a fresh random
    /// subset each pass when there are more, so a site's 30,000 clips cost what a few thousand do. Returns the
    /// Adam steps taken.
    @discardableResult
    public func adaptByEntropy(count: Int, clip: (Int) -> ClipFeatures, epochs: Int, learningRate: Float = 1e-3,
                               maxChunksPerPass: Int = ChunkedClassifier.maxAdaptationChunksPerPass) throws -> Int {
        guard epochs > 0 else { return 0 }
        let model = self.model, parameters = model.parameterCount
        let optimizer = try AdamW(parameterCount: parameters, weightDecay: 0)
        // Zero gradients leave Adam's moments at zero, so the weights outside these ranges do not move.
        let adapted = model.batchNormParameterRanges.sorted { $0.lowerBound < $1.lowerBound }
        let frozen = zip([0] + adapted.map(\.upperBound), adapted.map(\.lowerBound) + [parameters]).map { $0..<$1 }
        let dlogits = UnsafeMutablePointer<Float>.allocate(capacity: batch * Self.classes)
        defer { dlogits.deallocate() }
        for epoch in 0..<epochs {
            _ = try classify(count: count, clip: clip, eachChunk: nil, training: true, shuffleSeed: UInt64(epoch),
                             maxRows: maxChunksPerPass) { logits, rows in
                Self.meanEntropyGradient(logits: logits, rows: rows, into: dlogits)
                model.zeroGradients()
                model.backward(dlogits: dlogits)
                for range in frozen { (model.gradients + range.lowerBound).update(repeating: 0, count: range.count) }
                try optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: learningRate)
            }
        }
        model.zeroGradients()
        return optimizer.step
    }

    /// ∂/∂z of the batch's mean entropy H = −Σ p·log p of p = softmax(z): −p_k·(log p_k + H) / rows.
    static func meanEntropyGradient(logits: UnsafePointer<Float>, rows: Int, into dlogits: UnsafeMutablePointer<Float>) {
        var probabilities = [Float](repeating: 0, count: classes)
        for row in 0..<rows {
            softmax(logits + row * classes, into: &probabilities)
            let entropy = -probabilities.reduce(Float(0)) { $0 + ($1 > 0 ? $1 * log($1) : 0) }
            for (k, p) in probabilities.enumerated() {
                dlogits[row * classes + k] = p > 0 ? -p * (log(p) + entropy) / Float(rows) : 0
            }
        }
    }

    /// Chunks one entropy pass reads at most (`adaptByEntropy`): 128 Adam steps at the usual batch of 32.
    public static let maxAdaptationChunksPerPass = 4096

    /// The clips' mean probabilities; `shuffleSeed` mixes the chunks' order (else clip by clip, as a folder lists
    /// them: one digit after another), of which the first `maxRows` are read (a clip none of whose chunks is read
    /// gets zeros), and `afterForward` sees each batch's logits and size after its forward.
    private func classify(count: Int, clip: (Int) -> ClipFeatures, eachChunk: ((Int, Int, UnsafeBufferPointer<Float>) -> Void)?,
                          training: Bool, shuffleSeed: UInt64? = nil, maxRows: Int = .max,
                          afterForward: ((UnsafePointer<Float>, Int) throws -> Void)? = nil) throws -> [Float] {
        let classes = Self.classes, variants = plan.variants
        var rows: [(clip: Int, start: Int, variant: Int)] = []
        for i in 0..<count {
            for start in LogMelCrop.chunkStarts(clipFrames: clip(i).frames, frames: cropFrames) {
                for variant in variants.indices { rows.append((i, start, variant)) }
            }
        }
        if let shuffleSeed {
            var rng = SplitMix64(seed: 0x7E47_0000 ^ shuffleSeed)
            for i in stride(from: rows.count - 1, to: 0, by: -1) { rows.swapAt(i, rng.nextInt(below: i + 1)) }
        }
        if rows.count > maxRows { rows.removeLast(rows.count - maxRows) }
        var sums = [Float](repeating: 0, count: count * classes)
        var weights = [Double](repeating: 0, count: count)
        var rowWeights = [Double](repeating: 1, count: batch)
        var probabilities = [Float](repeating: 0, count: classes)
        let plane = melBins * cropFrames
        var placed = (clip: -1, offset: 0)
        for first in stride(from: 0, to: rows.count, by: batch) {
            let group = rows[first..<min(rows.count, first + batch)]
            for (slot, row) in group.enumerated() {
                let features = clip(row.clip), window = input + slot * plane, variant = variants[row.variant]
                var start = row.start
                if placed.clip != row.clip {  // a clip's rows are consecutive: placed once, not per chunk and variant
                    placed = (row.clip, plan.shortClipPosition.offset(clip: features.values, melBins: melBins,
                                                                      clipFrames: features.frames, frames: cropFrames))
                }
                var offset = placed.offset
                if features.frames < cropFrames {
                    offset = max(0, min(cropFrames - features.frames, offset + variant.shift))
                } else {
                    start = max(0, min(features.frames - 1, start + variant.shift))
                }
                LogMelCrop.copy(from: features.values, melBins: melBins, clipFrames: features.frames, startFrame: start,
                                offset: offset, frames: cropFrames, padding: features.padding, into: window)
                var warped: LogMelCrop.CopiedFrames?
                if variant.warp != 1 {
                    SpeakerAugmentation.resample(window, melBins: melBins, frames: cropFrames, scratch: scratch,
                                                 alongTime: false, factor: variant.warp)
                    warped = LogMelCrop.CopiedFrames(clipFrames: features.frames, startFrame: start, offset: offset, frames: cropFrames)
                }
                if plan.weighting == .energy { rowWeights[slot] = Self.meanPower(window, count: plane) }
                // A warped variant is standardised as training standardises a warped crop: by the clip's
                // statistics moved by what the warp did to the copied frames.
                plan.normalization.apply(window, melBins: melBins, frames: cropFrames, clip: features.values,
                                         clipFrames: features.frames, changed: warped)
            }
            let logits = try model.forward(input: input, batch: group.count, training: training)
            try afterForward?(logits, group.count)
            for (slot, row) in group.enumerated() {
                Self.softmax(logits + slot * classes, into: &probabilities)
                for k in 0..<classes { sums[row.clip * classes + k] += Float(rowWeights[slot]) * probabilities[k] }
                weights[row.clip] += rowWeights[slot]
                if row.variant == 0 { probabilities.withUnsafeBufferPointer { eachChunk?(row.clip, row.start, $0) } }
            }
        }
        for i in 0..<count where weights[i] > 0 {
            for k in 0..<classes { sums[i * classes + k] = Float(Double(sums[i * classes + k]) / weights[i]) }
        }
        return sums
    }

    /// Mean power of a window of log-mel dB values (summed relative to its loudest value, so the sum cannot
    /// overflow whatever the recording's level).
    static func meanPower(_ window: UnsafePointer<Float>, count: Int) -> Double {
        let loudest = LogMelCrop.peak(of: window, count: count)
        var sum = 0.0
        for i in 0..<count { sum += Double(LogMelCrop.relativePower(decibels: window[i], peak: loudest)) }
        return sum / Double(count) * pow(10, Double(loudest) / 10)
    }

    static func softmax(_ logits: UnsafePointer<Float>, into out: inout [Float]) {
        var largest = -Float.infinity
        for k in 0..<out.count { largest = max(largest, logits[k]) }
        var sum: Float = 0
        for k in 0..<out.count {
            out[k] = exp(logits[k] - largest)
            sum += out[k]
        }
        for k in 0..<out.count { out[k] /= sum }
    }
}
