import CSoxr

/// libsoxr HQ resampling, length exactly as librosa.resample (ceil(n * out/in), fix_length).
public enum Resampler {
    /// Errors name "resampler" as their path; `LogMelExtractor.logMel(path:)` reports the clip's own path.
    public static func resample(_ samples: [Float], from: Int, to: Int) throws -> [Float] {
        if from == to { return samples }
        var output: [Float] = []
        try samples.withUnsafeBufferPointer { try resample($0, from: from, to: to, into: &output, path: "resampler") }
        return output
    }

    /// Resamples one whole clip into `output` (its capacity is reused), driving libsoxr exactly as
    /// python-soxr's `resample` does — float32 in and out, `soxr_quality_spec(SOXR_HQ, 0)`, input fed
    /// in chunks of 48000·in/out frames into an output capped at n·out/in + 1 frames, then one flush —
    /// so the samples are bit-identical to librosa.load's, then trims or zero-pads to librosa's length.
    /// A fresh soxr_t per clip: soxr_clear rebuilds the filters anyway, so reusing one saves nothing.
    static func resample(_ input: UnsafeBufferPointer<Float>, from inputRate: Int, to outputRate: Int,
                         into output: inout [Float], path: String) throws {
        guard inputRate > 0, outputRate > 0 else {
            throw AudioError(path: path, problem: "cannot resample from \(inputRate) Hz to \(outputRate) Hz")
        }
        var error: soxr_error_t?
        var ioSpec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
        var qualitySpec = soxr_quality_spec(UInt(SOXR_HQ), 0)
        guard let soxr = soxr_create(Double(inputRate), Double(outputRate), 1, &error, &ioSpec, &qualitySpec, nil),
              error == nil else {
            throw AudioError(path: path, problem: "libsoxr: \(error.map { String(cString: $0) } ?? "soxr_create failed")")
        }
        defer { soxr_delete(soxr) }

        let inputLength = input.count
        let targetLength = outputLength(inputLength: inputLength, from: inputRate, to: outputRate)
        let capacity = Int(Double(inputLength) * Double(outputRate) / Double(inputRate) + 1)
        let chunkLength = Int(48000 * Double(inputRate) / Double(outputRate))
        resize(&output, to: max(capacity, targetLength))
        output.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            var produced = 0, done = 0, start = 0
            while start < inputLength {
                let count = min(chunkLength, inputLength - start)
                error = soxr_process(soxr, input.baseAddress! + start, count, nil, base + produced, capacity - produced, &done)
                produced += done
                start += count
            }
            error = soxr_process(soxr, nil, 0, nil, base + produced, capacity - produced, &done)
            produced += done
            // fix_length pads with zeros; the reused buffer may hold the previous clip there.
            for index in produced..<out.count { out[index] = 0 }
        }
        resize(&output, to: targetLength)
        if let error { throw AudioError(path: path, problem: "libsoxr: \(String(cString: error))") }
    }

    /// librosa.resample's output length: `int(np.ceil(n * (float(to) / from)))`, in the same double arithmetic.
    static func outputLength(inputLength: Int, from: Int, to: Int) -> Int {
        let ratio = Double(to) / Double(from)
        return Int((Double(inputLength) * ratio).rounded(.up))
    }
}
