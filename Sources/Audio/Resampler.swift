import CSoxr

/// libsoxr HQ resampling, length exactly as librosa.resample (ceil(n * out/in), fix_length).
public enum Resampler {
    /// Errors name "resampler" as their path; `LogMelExtractor.logMel(path:)` reports the clip's own path.
    public static func resample(_ samples: [Float], from: Int, to: Int) throws -> [Float] {
        if from == to { return samples }
        let converter = try SoxrConverter(from: from, to: to, path: "resampler")
        var output: [Float] = []
        try samples.withUnsafeBufferPointer { try converter.resample($0, into: &output, path: "resampler") }
        return output
    }

    /// librosa.resample's output length: `int(np.ceil(n * (float(to) / from)))`, in the same double arithmetic.
    static func outputLength(inputLength: Int, from: Int, to: Int) -> Int {
        let ratio = Double(to) / Double(from)
        return Int((Double(inputLength) * ratio).rounded(.up))
    }
}

/// One libsoxr HQ converter for a rate pair, driven exactly as python-soxr's `resample` drives it
/// (float32 in and out, `soxr_quality_spec(SOXR_HQ, 0)`, input fed in chunks of 48000·in/out frames
/// into an output capped at n·out/in + 1 frames, then one flush), so the samples are bit-identical to
/// librosa.load's. Creating the HQ filter costs more than resampling a short clip, so a per-thread
/// extractor keeps one converter per input rate and resets it with `soxr_clear` between clips.
final class SoxrConverter {
    let inputRate: Int
    let outputRate: Int
    private let soxr: OpaquePointer

    init(from inputRate: Int, to outputRate: Int, path: String) throws {
        guard inputRate > 0, outputRate > 0 else {
            throw AudioError(path: path, problem: "cannot resample from \(inputRate) Hz to \(outputRate) Hz")
        }
        self.inputRate = inputRate
        self.outputRate = outputRate
        var error: soxr_error_t?
        var ioSpec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
        var qualitySpec = soxr_quality_spec(UInt(SOXR_HQ), 0)
        let created = soxr_create(Double(inputRate), Double(outputRate), 1, &error, &ioSpec, &qualitySpec, nil)
        guard let created, error == nil else {
            throw AudioError(path: path, problem: "libsoxr: \(error.map { String(cString: $0) } ?? "soxr_create failed")")
        }
        soxr = created
    }

    deinit { soxr_delete(soxr) }

    /// Resamples one whole clip into `output` (its capacity is reused), trimmed or zero-padded
    /// to librosa's length. The converter is left cleared for the next clip.
    func resample(_ input: UnsafeBufferPointer<Float>, into output: inout [Float], path: String) throws {
        let inputLength = input.count
        let targetLength = Resampler.outputLength(inputLength: inputLength, from: inputRate, to: outputRate)
        let capacity = Int(Double(inputLength) * Double(outputRate) / Double(inputRate) + 1)
        let chunkLength = Int(48000 * Double(inputRate) / Double(outputRate))
        resize(&output, to: max(capacity, targetLength))
        var produced = 0
        var error: soxr_error_t?
        output.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            var done = 0
            var start = 0
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
        let clearError = soxr_clear(soxr)
        if let failure = error ?? clearError {
            throw AudioError(path: path, problem: "libsoxr: \(String(cString: failure))")
        }
    }
}
