import Audio
import Datasets
import Foundation
import NN

/// Speaker-robust augmentations of one training crop: a (melBins, frames) log-mel in dB, changed in place.
/// In the order applied:
/// - tempo: the time axis stretched by 1 + U(−tempo, tempo) (speed perturbation without the pitch change);
/// - vocal-tract length: the mel axis warped by 1 + U(−vocalTract, vocalTract) around its lowest band, as
///   VTLP warps the frequency axis, so a voice sounds as from a shorter or longer vocal tract;
/// - equalizer: each mel band moved by a smooth random curve of up to ± `equalizer` dB (the colouring of a
///   different microphone, room or phone line: `equalizerCurve`);
/// - reverberation: with probability `reverbProbability`, a room's late reverberation added in power: each
///   band's power smeared forward in time by an exponential tail that decays 60 dB in a reverberation time drawn
///   uniformly in 0.1…`reverbMaxSeconds`, its energy 0–15 dB below the direct sound's (`addReverberation`);
/// - gain: every value moved by U(−gain, gain) dB (a louder or quieter recording);
/// - noise: with probability `noiseProbability`, noise added in power at a signal-to-noise ratio drawn
///   uniformly in `noiseSNR` dB, relative to the crop's mean power: a window of one of `recordedNoise`'s
///   recordings when it is set, else white noise, each cell's power exponentially distributed around its
///   level as a periodogram's is;
/// - SpecAugment (Park et al., 2019): `frequencyMasks` bands of up to `frequencyMaskBins` mel bins and
///   `timeMasks` spans of up to `timeMaskFrames` frames set to the crop's mean.
/// Every draw comes from a generator keyed by (seed, epoch, position), so any rank count and any resume
/// augment the same crop the same way.
public struct SpeakerAugmentation: Sendable, Equatable {
    public var tempo = 0.0
    public var vocalTract = 0.0
    public var equalizer = 0.0
    public var gain = 0.0
    public var reverbProbability = 0.0
    public var reverbMaxSeconds = 0.8
    /// Seconds between frames (the hop): how far a reverberation tail decays from one frame to the next.
    public var frameSeconds = AudioSettings().hopSeconds
    public var noiseProbability = 0.0
    public var noiseSNR = 10.0...40.0
    public var frequencyMasks = 0, frequencyMaskBins = 0
    public var timeMasks = 0, timeMaskFrames = 0
    /// Noise recordings that take the place of generated noise (`augmentation.noise_folder`).
    public var recordedNoise: RecordedNoise?

    public init() {}

    /// Whether no augmentation is on (the crop is left as it is).
    public var isIdentity: Bool {
        tempo == 0 && vocalTract == 0 && equalizer == 0 && gain == 0 && reverbProbability == 0
            && noiseProbability == 0
            && (frequencyMasks == 0 || frequencyMaskBins == 0) && (timeMasks == 0 || timeMaskFrames == 0)
    }

    /// The generator of the crop at `position` of `epoch`.
    public static func generator(seed: UInt64, epoch: Int, position: Int) -> SplitMix64 {
        SplitMix64(seed: seed ^ 0x5350_4543_4155_4700 ^ (UInt64(epoch) << 44) ^ (UInt64(position) &* 0xA24B_AED4_963E_E407))
    }

    /// Augments `crop` in place with what a different speaker, level or room would change (tempo, vocal
    /// tract, equalizer, gain, noise); `scratch` holds 2·melBins·frames floats. Normalisation by the clip's statistics
    /// (`TrainingCrop`) comes after this and before `applyMasks`.
    public func applyVoiceAndChannel(_ crop: UnsafeMutablePointer<Float>, melBins: Int, frames: Int,
                                     scratch: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        if tempo > 0 {
            let factor = 1 + tempo * (2 * rng.nextUniformDouble() - 1)
            Self.resample(crop, melBins: melBins, frames: frames, scratch: scratch, alongTime: true, factor: factor)
        }
        if vocalTract > 0 {
            let factor = 1 + vocalTract * (2 * rng.nextUniformDouble() - 1)
            Self.resample(crop, melBins: melBins, frames: frames, scratch: scratch, alongTime: false, factor: factor)
        }
        let count = melBins * frames
        if equalizer > 0 {
            var weights = SIMD3<Double>()
            for k in 0..<weights.scalarCount { weights[k] = 2 * rng.nextUniformDouble() - 1 }
            for m in 0..<melBins {
                let lift = Float(equalizer * Self.equalizerCurve(weights, band: m, of: melBins))
                let row = crop + m * frames
                for t in 0..<frames { row[t] += lift }
            }
        }
        if reverbProbability > 0, rng.nextUniformDouble() < reverbProbability {
            let seconds = 0.1 + (reverbMaxSeconds - 0.1) * rng.nextUniformDouble()
            let directToReverberant = 15 * rng.nextUniformDouble()
            Self.addReverberation(crop, melBins: melBins, frames: frames, decayPerFrame: pow(10, -6 * frameSeconds / seconds),
                                  tailDecibelsBelowDirect: directToReverberant)
        }
        if gain > 0 {
            let shift = Float(gain * (2 * rng.nextUniformDouble() - 1))
            for i in 0..<count { crop[i] += shift }
        }
        if noiseProbability > 0, rng.nextUniformDouble() < noiseProbability {
            let snr = noiseSNR.lowerBound + (noiseSNR.upperBound - noiseSNR.lowerBound) * rng.nextUniformDouble()
            var recording: UnsafeMutablePointer<Float>?
            if let recordedNoise {
                recording = scratch + count
                recordedNoise.unitPowerWindow(melBins: melBins, frames: frames, rng: &rng, into: recording!)
            }
            Self.addNoise(crop, count: count, snrDecibels: snr, scratch: scratch, recording: recording, rng: &rng)
        }
    }

    /// SpecAugment's masks, filled with the crop's mean: the last change to a crop.
    public func applyMasks(_ crop: UnsafeMutablePointer<Float>, melBins: Int, frames: Int, rng: inout SplitMix64) {
        let count = melBins * frames
        guard (frequencyMasks > 0 && frequencyMaskBins > 0) || (timeMasks > 0 && timeMaskFrames > 0) else { return }
        var sum = 0.0
        for i in 0..<count { sum += Double(crop[i]) }
        let fill = Float(sum / Double(count))
        for _ in 0..<(frequencyMaskBins > 0 ? frequencyMasks : 0) {
            let band = Self.span(maximum: frequencyMaskBins, within: melBins, &rng)
            for m in band { (crop + m * frames).update(repeating: fill, count: frames) }
        }
        for _ in 0..<(timeMaskFrames > 0 ? timeMasks : 0) {
            let span = Self.span(maximum: timeMaskFrames, within: frames, &rng)
            for m in 0..<melBins { for t in span { crop[m * frames + t] = fill } }
        }
    }

    /// The equalizer's curve at `band`, in −1...1: cosines of 1, 2 and 3 half-periods across the mel axis (a
    /// tilt, a bump and a ripple, as coarse as a microphone's or a phone line's response; finer detail is the
    /// voice's own) weighted by `weights` (each in −1...1) and averaged, so ± `equalizer` dB bounds every band.
    static func equalizerCurve(_ weights: SIMD3<Double>, band: Int, of melBins: Int) -> Double {
        let x = Double.pi * (Double(band) + 0.5) / Double(melBins)
        return (weights[0] * cos(x) + weights[1] * cos(2 * x) + weights[2] * cos(3 * x)) / 3
    }

    /// A random span of 0...maximum consecutive indices inside 0..<size.
    static func span(maximum: Int, within size: Int, _ rng: inout SplitMix64) -> Range<Int> {
        let width = rng.nextInt(below: min(maximum, size) + 1)
        let start = rng.nextInt(below: size - width + 1)
        return start..<(start + width)
    }

    /// out(i) = in(i / factor) along one axis by linear interpolation, edges held: a factor above 1
    /// stretches (slower speech, or formants moved up the mel axis), below 1 compresses.
    public static func resample(_ crop: UnsafeMutablePointer<Float>, melBins: Int, frames: Int,
                         scratch: UnsafeMutablePointer<Float>, alongTime: Bool, factor: Double) {
        scratch.update(from: crop, count: melBins * frames)
        let length = alongTime ? frames : melBins
        for i in 0..<length {
            let source = min(Double(length - 1), Double(i) / factor)
            let lower = Int(source), upper = min(length - 1, lower + 1)
            let weight = Float(source - Double(lower))
            if alongTime {
                for m in 0..<melBins {
                    let row = scratch + m * frames
                    crop[m * frames + i] = row[lower] + weight * (row[upper] - row[lower])
                }
            } else {
                let below = scratch + lower * frames, above = scratch + upper * frames, out = crop + i * frames
                for t in 0..<frames { out[t] = below[t] + weight * (above[t] - below[t]) }
            }
        }
    }

    /// x ← 10·log10(10^(x/10) + n) with n = P̄·10^(−snr/10)·u, P̄ the crop's mean power and u the cell's
    /// noise power at a mean of 1: `recording`'s (count floats) when given, else E ~ Exp(1). Each cell's power
    /// is computed once (kept in `scratch`, relative to the crop's peak, which the noise level scales with)
    /// and E drawn from a table of its quantiles: the cost that matters on the rank's step (see `bench train
    /// --crops`).
    static func addNoise(_ crop: UnsafeMutablePointer<Float>, count: Int, snrDecibels: Double,
                         scratch: UnsafeMutablePointer<Float>, recording: UnsafePointer<Float>? = nil,
                         rng: inout SplitMix64) {
        let peak = LogMelCrop.relativePowers(of: crop, count: count, into: scratch)
        var power = 0.0
        for i in 0..<count { power += Double(scratch[i]) }
        let level = Float(power / Double(count) * pow(10, -snrDecibels / 10))
        if let recording {
            for i in 0..<count { scratch[i] += level * recording[i] }
        } else {
            var bits: UInt64 = 0, left = 0
            exponentialQuantiles.withUnsafeBufferPointer { quantiles in
                for i in 0..<count {
                    if left == 0 { (bits, left) = (rng.next(), 6) }  // six 10-bit draws per 64 random bits
                    scratch[i] += level * quantiles[Int(bits & 1023)]
                    bits >>= 10
                    left -= 1
                }
            }
        }
        LogMelCrop.setDecibels(crop, count: count, ofPowers: scratch, peak: peak)
    }

    /// P'(t) = P(t) + tail(t) in each band, tail(t) = a·(tail(t − 1) + c·P(t − 1)): every frame's power
    /// echoes on in the frames after it as c·a^k, a = `decayPerFrame`, with c set so that the whole echo
    /// Σ_k c·a^k = c·a/(1 − a) is `tailDecibelsBelowDirect` dB below the frame it echoes.
    static func addReverberation(_ crop: UnsafeMutablePointer<Float>, melBins: Int, frames: Int, decayPerFrame a: Double,
                                 tailDecibelsBelowDirect: Double) {
        let count = melBins * frames
        let peak = LogMelCrop.relativePowers(of: crop, count: count, into: crop)
        let c = Float(pow(10, -tailDecibelsBelowDirect / 10) * (1 - a) / a), decay = Float(a)
        for m in 0..<melBins {
            let row = crop + m * frames
            var tail: Float = 0, previous: Float = 0
            for t in 0..<frames {
                tail = decay * (tail + c * previous)
                previous = row[t]
                row[t] = previous + tail
            }
        }
        LogMelCrop.setDecibels(crop, count: count, ofPowers: crop, peak: peak)
    }

    /// Exp(1) at the midpoints of 1,024 equal-probability bins: −log(1 − (k + ½)/1024).
    static let exponentialQuantiles: [Float] = (0..<1024).map { Float(-log(1 - (Double($0) + 0.5) / 1024)) }
}

/// `training.label_smoothing`: targets (1 − ε)·t + ε/classes, so a row of blended targets still sums to 1.
public enum LabelSmoothing {
    public static func apply(_ targets: UnsafeMutablePointer<Float>, rows: Int, classes: Int, epsilon: Float) {
        for i in 0..<(rows * classes) { targets[i] = (1 - epsilon) * targets[i] + epsilon / Float(classes) }
    }
}
