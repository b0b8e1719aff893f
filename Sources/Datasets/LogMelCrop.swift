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
