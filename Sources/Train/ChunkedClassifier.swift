import Datasets
import Foundation
import NN

/// Classifies whole clips with a ResNet in eval mode, as `prediction.inference_chunk_method: Fix`:
/// each clip's log-mel is cut into crop-length chunks (the last one padded with the clip's silence
/// level; a clip shorter than one chunk placed as in training), and the chunks' softmax probabilities
/// are averaged: weighted by each chunk's mean power (`prediction.chunk_weighting: Energy`), so the
/// silent tail of a recording does not dilute the chunk that holds the word, or equally (`Equal`).
public final class ChunkedClassifier {
    /// One clip's features: (melBins, frames) row-major, and the value that pads its last chunk.
    public typealias ClipFeatures = (values: UnsafePointer<Float>, frames: Int, padding: Float)

    let model: ResNet
    let melBins: Int
    let cropFrames: Int
    let batch: Int
    let shortClipPosition: LogMelCrop.ShortClipPosition
    let weighting: ChunkWeighting
    let normalization: SpectrogramNormalization
    let input: UnsafeMutablePointer<Float>  // [batch][1][melBins][cropFrames]
    public static let classes = 10

    /// How the chunks of a clip are averaged (`prediction.chunk_weighting`).
    public enum ChunkWeighting: String, Sendable, CaseIterable {
        case energy = "Energy"
        case equal = "Equal"
    }

    public init(model: ResNet, melBins: Int, cropFrames: Int, batch: Int, shortClipPosition: LogMelCrop.ShortClipPosition,
                weighting: ChunkWeighting, normalization: SpectrogramNormalization) {
        self.model = model
        self.normalization = normalization
        self.shortClipPosition = shortClipPosition
        self.weighting = weighting
        self.melBins = melBins
        self.cropFrames = cropFrames
        self.batch = min(batch, model.maxBatch)
        input = .allocate(capacity: self.batch * melBins * cropFrames)
    }

    deinit { input.deallocate() }

    /// Mean probabilities of `count` clips, [count][classes]; `eachChunk` sees every chunk's own
    /// probabilities (clip index, start frame, classes values).
    public func classify(count: Int, clip: (Int) -> ClipFeatures,
                         eachChunk: ((Int, Int, UnsafeBufferPointer<Float>) -> Void)? = nil) throws -> [Float] {
        let classes = Self.classes
        var chunks: [(clip: Int, start: Int)] = []
        for i in 0..<count {
            for start in LogMelCrop.chunkStarts(clipFrames: clip(i).frames, frames: cropFrames) { chunks.append((i, start)) }
        }
        var sums = [Float](repeating: 0, count: count * classes)
        var weights = [Double](repeating: 0, count: count)
        var chunkWeights = [Double](repeating: 1, count: batch)
        var probabilities = [Float](repeating: 0, count: classes)
        let plane = melBins * cropFrames
        for first in stride(from: 0, to: chunks.count, by: batch) {
            let group = chunks[first..<min(chunks.count, first + batch)]
            for (row, chunk) in group.enumerated() {
                let features = clip(chunk.clip)
                let offset = shortClipPosition.offset(clipFrames: features.frames, frames: cropFrames)
                LogMelCrop.copy(from: features.values, melBins: melBins, clipFrames: features.frames, startFrame: chunk.start,
                                offset: offset, frames: cropFrames, padding: features.padding, into: input + row * plane)
                if weighting == .energy { chunkWeights[row] = Self.meanPower(input + row * plane, count: plane) }
                normalization.apply(input + row * plane, melBins: melBins, frames: cropFrames, clip: features.values,
                                    clipFrames: features.frames)
            }
            let logits = try model.forward(input: input, batch: group.count, training: false)
            for (row, chunk) in group.enumerated() {
                Self.softmax(logits + row * classes, into: &probabilities)
                for k in 0..<classes { sums[chunk.clip * classes + k] += Float(chunkWeights[row]) * probabilities[k] }
                weights[chunk.clip] += chunkWeights[row]
                probabilities.withUnsafeBufferPointer { eachChunk?(chunk.clip, chunk.start, $0) }
            }
        }
        for i in 0..<count { for k in 0..<classes { sums[i * classes + k] = Float(Double(sums[i * classes + k]) / weights[i]) } }
        return sums
    }

    /// Mean power of a window of log-mel dB values (summed relative to its loudest value, so the sum cannot
    /// overflow whatever the recording's level).
    static func meanPower(_ window: UnsafePointer<Float>, count: Int) -> Double {
        var loudest = -Float.infinity
        for i in 0..<count { loudest = max(loudest, window[i]) }
        var sum = 0.0
        for i in 0..<count { sum += pow(10, Double(window[i] - loudest) / 10) }
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
