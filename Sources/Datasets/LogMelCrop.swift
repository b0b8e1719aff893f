/// Fixed-length windows of a clip's (melBins, clipFrames) log-mel: training crops and inference chunks.
public enum LogMelCrop {
    /// Writes frames [startFrame, startFrame + frames − offset) of the clip at window frames [offset, frames)
    /// of a (melBins, frames) window in `out`; window frames the clip does not reach get `padding` (the
    /// clip's silence level: what zero-padded audio would give).
    public static func copy(from source: UnsafePointer<Float>, melBins: Int, clipFrames: Int, startFrame: Int,
                            offset: Int = 0, frames: Int, padding: Float, into out: UnsafeMutablePointer<Float>) {
        let offset = max(0, min(frames, offset))
        let copied = max(0, min(frames - offset, clipFrames - startFrame))
        for m in 0..<melBins {
            let row = out + m * frames
            if offset > 0 { row.update(repeating: padding, count: offset) }
            if copied > 0 { (row + offset).update(from: source + m * clipFrames + startFrame, count: copied) }
            let end = offset + copied
            if end < frames { (row + end).update(repeating: padding, count: frames - end) }
        }
    }

    /// Where a clip shorter than the window sits in it (`audio.short_clip_position`).
    public enum ShortClipPosition: String, Sendable, CaseIterable {
        /// At the window's start, silence after it.
        case start = "Start"
        /// In the middle, silence on both sides: where a word sits in a recording cut around it.
        case center = "Center"

        /// The window frame the clip's first frame lands on (0 for clips that fill the window).
        public func offset(clipFrames: Int, frames: Int) -> Int {
            switch self {
            case .start: return 0
            case .center: return max(0, (frames - clipFrames) / 2)
            }
        }
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
    /// `clip` it was cut from.
    public func apply(_ window: UnsafeMutablePointer<Float>, melBins: Int, frames: Int, clip: UnsafePointer<Float>,
                      clipFrames: Int) {
        guard self != .no, clipFrames > 0 else { return }
        var total = 0.0, squares = 0.0
        for i in 0..<(melBins * clipFrames) {
            total += Double(clip[i])
            squares += Double(clip[i]) * Double(clip[i])
        }
        let count = Double(melBins * clipFrames), mean = total / count
        // A constant clip (all silence) keeps its scale rather than dividing by zero.
        let scale = Float(1 / max((squares / count - mean * mean).squareRoot(), 1e-3))
        for m in 0..<melBins {
            var center = Float(mean)
            if self == .perBand {
                var band = 0.0
                for t in 0..<clipFrames { band += Double(clip[m * clipFrames + t]) }
                center = Float(band / Double(clipFrames))
            }
            let row = window + m * frames
            for t in 0..<frames { row[t] = (row[t] - center) * scale }
        }
    }
}
