import Foundation

/// Fixed-length windows of a clip's (melBins, clipFrames) log-mel: training crops and inference chunks.
public enum LogMelCrop {
    /// Writes frames [startFrame, startFrame + frames − offset) of the clip at window frames [offset, frames)
    /// of a (melBins, frames) window in `out`; window frames the clip does not reach get `padding` (the
    /// clip's silence level: what zero-padded audio would give).
    public static func copy(from source: UnsafePointer<Float>, melBins: Int, clipFrames: Int, startFrame: Int,
                            offset: Int = 0, frames: Int, padding: Float, into out: UnsafeMutablePointer<Float>) {
        let copied = CopiedFrames(clipFrames: clipFrames, startFrame: startFrame, offset: offset, frames: frames)
        for m in 0..<melBins {
            let row = out + m * frames
            if copied.offset > 0 { row.update(repeating: padding, count: copied.offset) }
            if copied.count > 0 { (row + copied.offset).update(from: source + m * clipFrames + startFrame, count: copied.count) }
            let end = copied.offset + copied.count
            if end < frames { (row + end).update(repeating: padding, count: frames - end) }
        }
    }

    /// The frames `copy` takes: clip frames [startFrame, startFrame + count) land on window frames
    /// [offset, offset + count).
    public struct CopiedFrames: Sendable {
        public var startFrame: Int
        public var offset: Int
        public var count: Int

        public init(clipFrames: Int, startFrame: Int, offset: Int, frames: Int) {
            self.startFrame = startFrame
            self.offset = max(0, min(frames, offset))
            count = max(0, min(frames - self.offset, clipFrames - startFrame))
        }
    }

    /// Where a clip shorter than the window sits in it (`audio.short_clip_position`).
    public enum ShortClipPosition: String, Sendable, CaseIterable {
        /// At the window's start, silence after it.
        case start = "Start"
        /// In the middle, silence on both sides: where a word sits in a recording cut around it.
        case center = "Center"
        /// With its energy centroid (frames weighted by their power) at the window's middle, as far as the
        /// window allows: the word itself aligned, whatever silence the recording kept before and after it.
        case energy = "Energy"

        /// The window frame the first frame of the (melBins, clipFrames) log-mel `clip` lands on (0 for clips
        /// that fill the window).
        public func offset(clip: UnsafePointer<Float>, melBins: Int, clipFrames: Int, frames: Int) -> Int {
            let room = frames - clipFrames
            guard room > 0 else { return 0 }
            switch self {
            case .start: return 0
            case .center: return room / 2
            case .energy:
                let centroid = Self.energyCentroid(clip, melBins: melBins, clipFrames: clipFrames)
                return max(0, min(room, Int((Double(frames) / 2 - centroid).rounded(.down))))
            }
        }

        /// The power-weighted mean time of a log-mel dB clip, in frames from its start (frame t spans
        /// [t, t + 1)); the middle for a clip without power.
        static func energyCentroid(_ clip: UnsafePointer<Float>, melBins: Int, clipFrames: Int) -> Double {
            let loudest = LogMelCrop.peak(of: clip, count: melBins * clipFrames)
            guard loudest.isFinite else { return Double(clipFrames) / 2 }
            var total = 0.0, moment = 0.0
            for m in 0..<melBins {
                let row = clip + m * clipFrames
                var rowTotal: Float = 0, rowMoment: Float = 0
                for t in 0..<clipFrames {
                    let power = LogMelCrop.relativePower(decibels: row[t], peak: loudest)
                    rowTotal += power
                    rowMoment += power * (Float(t) + 0.5)
                }
                total += Double(rowTotal)
                moment += Double(rowMoment)
            }
            return total > 0 ? moment / total : Double(clipFrames) / 2
        }
    }

    /// 10^((decibels − peak) / 10) for decibels ≤ peak: a power relative to the peak's (no overflow whatever
    /// the recording's level), as 2^((decibels − peak) · log2(10) / 10) by `exp2OfNonPositive`.
    @inlinable @inline(__always)
    public static func relativePower(decibels: Float, peak: Float) -> Float {
        exp2OfNonPositive((decibels - peak) * 0.332_192_81)
    }

    /// 2^y for −126 ≤ y ≤ 0 within 3.5·10⁻⁷ relative (2⁻¹²⁶ below): the exponent's bits times a degree-5
    /// polynomial for the fraction (least-squares fit), a loop the compiler vectorises where a libm call per
    /// value made the energy centroid cost three times the rest of a training crop.
    @inlinable @inline(__always)
    public static func exp2OfNonPositive(_ y: Float) -> Float {
        let clamped = max(y, -126), whole = clamped.rounded(.down), f = clamped - whole
        var p: Float = 1.876_234_3e-3
        p = p * f + 8.992_594_7e-3
        p = p * f + 5.582_358_3e-2
        p = p * f + 0.240_154_55
        p = p * f + 0.693_152_96
        p = p * f + 0.999_999_94
        return Float(bitPattern: UInt32(Int32(whole) + 127) << 23) * p
    }

    /// 10·log10(x) for a power x > 0 (x below Float's smallest normal counts as it), within 10⁻⁴ dB (Float's
    /// own rounding of results up to ±380 dB; 10⁻⁶ near 0 dB): the inverse of `relativePower`. The exponent's
    /// bits plus ln of the mantissa, folded into [√½, √2), by the series 2·atanh(s), s = (m − 1)/(m + 1), to
    /// s⁹; a loop the compiler vectorises where a libm call per value made the reverberation cost a third of a
    /// training crop.
    @inlinable @inline(__always)
    public static func decibels(ofPower x: Float) -> Float {
        let bits = max(x, .leastNormalMagnitude).bitPattern
        let folds = (bits & 0x007F_FFFF) > 0x0035_04F3  // mantissa above √2: halve it, one more in the exponent
        let m = Float(bitPattern: (bits & 0x007F_FFFF) | (folds ? 0x3F00_0000 : 0x3F80_0000))
        let exponent = Float(Int32(bitPattern: bits >> 23) - (folds ? 126 : 127))
        let t = (m - 1) / (m + 1), t2 = t * t
        let lnMantissa = 2 * t * (1 + t2 * (1 / 3 + t2 * (1 / 5 + t2 * (1 / 7 + t2 / 9))))
        return 3.010_299_96 * exponent + 4.342_944_8 * lnMantissa
    }

    /// The loudest of `count` log-mel dB values: the reference their powers are taken relative to.
    @inlinable
    public static func peak(of decibels: UnsafePointer<Float>, count: Int) -> Float {
        var loudest = -Float.infinity
        for i in 0..<count { loudest = max(loudest, decibels[i]) }
        return loudest
    }

    /// powers[i] = the power of decibels[i] relative to their peak, whose dB it returns (`powers` may be
    /// `decibels` itself): noise and echoes add in power, and relative to the peak no level overflows.
    @inlinable
    public static func relativePowers(of decibels: UnsafePointer<Float>, count: Int,
                                      into powers: UnsafeMutablePointer<Float>) -> Float {
        let loudest = peak(of: decibels, count: count)
        for i in 0..<count { powers[i] = relativePower(decibels: decibels[i], peak: loudest) }
        return loudest
    }

    /// decibels[i] = the dB of powers[i], a power relative to `peak` dB (the inverse of `relativePowers`).
    @inlinable
    public static func setDecibels(_ decibels: UnsafeMutablePointer<Float>, count: Int, ofPowers powers: UnsafePointer<Float>,
                                   peak: Float) {
        for i in 0..<count { decibels[i] = peak + self.decibels(ofPower: powers[i]) }
    }

    /// Chunk starts of inference method "Fix": 0, frames, 2·frames, … while inside the clip (at least one).
    public static func chunkStarts(clipFrames: Int, frames: Int) -> StrideTo<Int> {
        stride(from: 0, to: max(clipFrames, 1), by: frames)
    }
}

/// `audio.spectrogram_normalization`: a window standardised by statistics of the whole clip it comes
/// from, in training and inference alike (a chunk of a long recording is scaled as the recording).
public enum SpectrogramNormalization: String, Sendable, CaseIterable {
    /// Log-mel dB as librosa's power_to_db (the seed's setting).
    case no = "No"
    /// Minus the clip's mean, over its standard deviation: recording level and dynamic range removed.
    case perClip = "PerClip"
    /// Minus each mel band's mean over the clip (the log-mel form of cepstral mean normalisation: the
    /// channel's and the voice's average spectral envelope removed), over the clip's standard deviation.
    case perBand = "PerBand"

    /// Normalises the (melBins, frames) `window` in place by the statistics of the (melBins, clipFrames)
    /// `clip` it was cut from. When the training augmentations have `changed` the copied frames since the
    /// cut (gain and noise move the level, warps the envelope), the clip's statistics are moved by what they
    /// did to those frames: mean and band means by the change of theirs, the spread by the ratio of spreads.
    /// So an augmented crop is standardised as the clip recorded that way would be at inference.
    public func apply(_ window: UnsafeMutablePointer<Float>, melBins: Int, frames: Int, clip: UnsafePointer<Float>,
                      clipFrames: Int, changed: LogMelCrop.CopiedFrames? = nil) {
        guard self != .no, clipFrames > 0 else { return }
        let whole = Moments(clip, rowLength: clipFrames, melBins: melBins, columns: 0..<clipFrames)
        // The copied frames before (in the clip) and after (in the window) the augmentations changed them.
        let moved = changed.flatMap { c in
            c.count == 0 ? nil : (before: Moments(clip, rowLength: clipFrames, melBins: melBins, columns: c.startFrame..<(c.startFrame + c.count)),
                                  after: Moments(UnsafePointer(window), rowLength: frames, melBins: melBins, columns: c.offset..<(c.offset + c.count)))
        }
        let meanShift = moved.map { $0.after.mean - $0.before.mean } ?? 0
        let spreadRatio = moved.map { $0.after.deviation / max($0.before.deviation, 1e-3) } ?? 1
        // A constant clip (all silence) keeps its scale rather than dividing by zero.
        let scale = Float(1 / max(whole.deviation * spreadRatio, 1e-3))
        for m in 0..<melBins {
            var center = Float(whole.mean + meanShift)
            if self == .perBand {
                center = Float(whole.bandMean(m) + (moved.map { $0.after.bandMean(m) - $0.before.bandMean(m) } ?? 0))
            }
            let row = window + m * frames
            for t in 0..<frames { row[t] = (row[t] - center) * scale }
        }
    }
}

/// Mean and standard deviation of columns `columns` of every row of a (melBins, rowLength) matrix, and
/// each row's mean over them.
private struct Moments {
    let values: UnsafePointer<Float>
    let rowLength: Int
    let columns: Range<Int>
    let mean: Double
    let deviation: Double

    init(_ values: UnsafePointer<Float>, rowLength: Int, melBins: Int, columns: Range<Int>) {
        self.values = values
        self.rowLength = rowLength
        self.columns = columns
        var total = 0.0, squares = 0.0
        for m in 0..<melBins {
            for t in columns {
                let x = Double(values[m * rowLength + t])
                total += x
                squares += x * x
            }
        }
        let count = Double(melBins * columns.count)
        mean = total / count
        deviation = max(squares / count - mean * mean, 0).squareRoot()
    }

    func bandMean(_ m: Int) -> Double {
        var band = 0.0
        for t in columns { band += Double(values[m * rowLength + t]) }
        return band / Double(columns.count)
    }
}
