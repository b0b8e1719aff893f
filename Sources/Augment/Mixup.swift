import Datasets
import Foundation
import NN

/// mixup of audio (`augmentation.mix_*`): a mixed batch replaces each training crop x by
/// λ·x + (1 − λ)·x′ for a random partner crop x′, `mix_iterations` times, λ ~ Beta(α, α) with
/// α = `mix_concentration`, and its targets by the same blend (`mix_target: Ratio`). The cache holds
/// log-mel power, so the audio is mixed there: two waveforms summed with weights λ and 1 − λ have, in
/// expectation, power λ²·P + (1 − λ)²·P′ (their cross term averages out). Every choice is a pure function
/// of seed, epoch and position, like the crops, so any rank count mixes the same way.
public struct Mixup: Sendable {
    public let concentration: Double
    public let iterations: Int
    public let probability: Double

    public init(concentration: Double, iterations: Int, probability: Double) {
        self.concentration = concentration
        self.iterations = iterations
        self.probability = probability
    }

    /// Whether global batch `batch` of `epoch` is mixed (`mix_probability` of the batches are).
    public func mixes(seed: UInt64, epoch: Int, batch: Int) -> Bool {
        var rng = SplitMix64(seed: seed ^ 0x6D69_7875_7000 ^ (UInt64(epoch) << 32) ^ UInt64(batch))
        return Double(rng.nextFloat()) < probability
    }

    /// The generator of the partners and ratios of the sample at `position` of `epoch`.
    public static func generator(seed: UInt64, epoch: Int, position: Int) -> SplitMix64 {
        SplitMix64(seed: seed ^ 0x6D69_7870_6172 ^ (UInt64(epoch) << 40) ^ (UInt64(position) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// λ ~ Beta(α, α) as G₁ / (G₁ + G₂) of two Gamma(α) draws.
    public func ratio(_ rng: inout SplitMix64) -> Float {
        let a = Self.gamma(concentration, &rng), b = Self.gamma(concentration, &rng)
        return a + b > 0 ? Float(a / (a + b)) : 0.5
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 via Gamma(shape + 1)·U^(1/shape).
    static func gamma(_ shape: Double, _ rng: inout SplitMix64) -> Double {
        // 1 − U is in (0, 1]: its power and logarithm stay finite.
        if shape < 1 { return gamma(shape + 1, &rng) * pow(1 - rng.nextUniformDouble(), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = rng.nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = 1 - rng.nextUniformDouble()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }

    /// x ← the log-mel (dB) of λ·audio(x) + (1 − λ)·audio(x′), in place over `count` values.
    public static func mix(_ x: UnsafeMutablePointer<Float>, with other: UnsafePointer<Float>, count: Int, ratio: Float) {
        guard ratio < 1 else { return }
        guard ratio > 0 else {
            x.update(from: other, count: count)
            return
        }
        let own = 20 * log10(ratio), partner = 20 * log10(1 - ratio)
        for i in 0..<count {
            let a = x[i] + own, b = other[i] + partner
            let top = max(a, b)
            x[i] = top + 10 * log10(pow(10, (a - top) / 10) + pow(10, (b - top) / 10))
        }
    }
}
