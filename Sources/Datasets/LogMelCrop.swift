/// Fixed-length windows of a clip's (melBins, clipFrames) log-mel: training crops and inference chunks.
public enum LogMelCrop {
    /// Writes frames [startFrame, startFrame + frames) as (melBins, frames) into `out`; frames past the
    /// clip's end get `padding` (the clip's silence level: what zero-padded audio would give).
    public static func copy(from source: UnsafePointer<Float>, melBins: Int, clipFrames: Int, startFrame: Int,
                            frames: Int, padding: Float, into out: UnsafeMutablePointer<Float>) {
        let copied = max(0, min(frames, clipFrames - startFrame))
        for m in 0..<melBins {
            let row = out + m * frames
            if copied > 0 { row.update(from: source + m * clipFrames + startFrame, count: copied) }
            if copied < frames { (row + copied).update(repeating: padding, count: frames - copied) }
        }
    }

    /// Chunk starts of inference method "Fix": 0, frames, 2·frames, … while inside the clip (at least one).
    public static func chunkStarts(clipFrames: Int, frames: Int) -> StrideTo<Int> {
        stride(from: 0, to: max(clipFrames, 1), by: frames)
    }
}
