import CSndFile
import Foundation

/// One line: "<path>: <problem>" (missing, empty, truncated, not audio, zero samples, all zeros, NaN/Inf).
/// Bad clips are common in scraped datasets; callers log and skip them, so the message must name the file.
public struct AudioError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    /// Newlines are folded so one bad file is always one log line.
    public var description: String {
        "\(path): \(problem)".replacingOccurrences(of: "\n", with: " ")
    }
}

/// Mono Float32 samples at the file's own rate.
public struct DecodedAudio: Sendable {
    public var samples: [Float]
    public var sampleRate: Int

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }
}

/// Sample encodings the writer can produce (the reader takes anything libsndfile decodes).
enum SampleEncoding: CaseIterable {
    case pcm8, pcm16, pcm24, pcm32, float32, flac16

    var sndfileFormat: Int32 {
        switch self {
        case .pcm8: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_U8)
        case .pcm16: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
        case .pcm24: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_24)
        case .pcm32: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_32)
        case .float32: return Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT)
        case .flac16: return Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16)
        }
    }
}

public enum AudioFile {
    /// Reads any file libsndfile reads (WAV PCM 8/16/24/32-bit, float, FLAC...), any channel count
    /// (mixed down to mono by averaging, as librosa.load), into Float32 scaled like soundfile/librosa.
    public static func read(path: String) throws -> DecodedAudio {
        var samples: [Float] = []
        let sampleRate = try AudioDecoder().decode(path: path, into: &samples)
        return DecodedAudio(samples: samples, sampleRate: sampleRate)
    }

    /// Number of frames and rate from the header only (for sizing), without decoding.
    public static func info(path: String) throws -> (frames: Int, sampleRate: Int, channels: Int) {
        let file = try SoundFileReader(path: path)
        return (file.frames, file.sampleRate, file.channels)
    }

    /// Writes mono 16-bit PCM WAV (used by tests and the synthetic data generator).
    public static func writeWAV(path: String, samples: [Float], sampleRate: Int) throws {
        try write(path: path, interleaved: samples, channels: 1, sampleRate: sampleRate, encoding: .pcm16)
    }

    /// Writes interleaved float samples with libsndfile, clipping (not wrapping) values beyond ±1.
    static func write(path: String, interleaved: [Float], channels: Int, sampleRate: Int,
                      encoding: SampleEncoding) throws {
        guard channels > 0, sampleRate > 0, interleaved.count % channels == 0 else {
            throw AudioError(path: path, problem: "cannot write \(interleaved.count) samples as \(channels) channels at \(sampleRate) Hz")
        }
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = encoding.sndfileFormat
        guard let handle = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw AudioError(path: path, problem: "cannot write audio (libsndfile: \(String(cString: sf_strerror(nil))))")
        }
        defer { sf_close(handle) }
        sf_command(handle, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))
        let frames = interleaved.count / channels
        let written = interleaved.withUnsafeBufferPointer { sf_writef_float(handle, $0.baseAddress, sf_count_t(frames)) }
        guard written == frames else {
            throw AudioError(path: path, problem: "wrote \(written) of \(frames) frames (libsndfile: \(String(cString: sf_strerror(handle))))")
        }
    }
}

/// An open libsndfile reader with a validated header; closes the file when released, on every throw path.
final class SoundFileReader {
    let handle: OpaquePointer
    let frames: Int
    let sampleRate: Int
    let channels: Int

    /// Longest clip accepted (in interleaved samples): a guard against corrupt headers, ~6 hours at 48 kHz stereo.
    static let maxSamples = 1 << 31

    /// Opens a file by path (reads the header only).
    convenience init(path: String) throws {
        var info = SF_INFO()
        guard let handle = sf_open(path, Int32(SFM_READ), &info) else {
            throw SoundFileReader.openFailure(path: path)
        }
        try self.init(handle: handle, info: info, path: path)
    }

    /// Takes ownership of an open handle; `path` is only for messages.
    init(handle: OpaquePointer, info: SF_INFO, path: String) throws {
        self.handle = handle
        frames = Int(info.frames)
        sampleRate = Int(info.samplerate)
        channels = Int(info.channels)
        if channels < 1 { throw AudioError(path: path, problem: "invalid channel count \(channels)") }
        if sampleRate < 1 { throw AudioError(path: path, problem: "invalid sample rate \(sampleRate) Hz") }
        if frames == 0 { throw AudioError(path: path, problem: "zero samples") }
        if frames < 0 || frames > SoundFileReader.maxSamples / channels {
            throw AudioError(path: path, problem: "implausible length of \(frames) frames in header")
        }
        if let note = SoundFileReader.truncatedDataNote(handle) {
            throw AudioError(path: path, problem: "truncated (libsndfile: \(note))")
        }
    }

    /// libsndfile silently shortens a WAV/AIFF whose data chunk runs past the end of the file and only
    /// notes it in its log ("data : 30870 (should be 19956)"); for a dataset that is a cut-off clip.
    private static func truncatedDataNote(_ handle: OpaquePointer) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
            buffer.initialize(repeating: 0)
            sf_command(handle, Int32(SFC_GET_LOG_INFO), buffer.baseAddress, Int32(buffer.count - 1))
            guard strstr(buffer.baseAddress!, "should be") != nil else { return nil }
            return String(cString: buffer.baseAddress!).split(separator: "\n")
                .first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("data") && $0.contains("should be") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    deinit { sf_close(handle) }

    /// Reads all `frames * channels` interleaved samples; fewer means the data ends early.
    func readFrames(into buffer: UnsafeMutablePointer<Float>, path: String) throws {
        let read = Int(sf_readf_float(handle, buffer, sf_count_t(frames)))
        guard read == frames else {
            throw AudioError(path: path, problem: "truncated: header declares \(frames) frames, only \(read) decoded")
        }
    }

    /// Names the likely cause, since libsndfile's own message does not distinguish a missing file from garbage.
    static func openFailure(path: String) -> AudioError {
        let sndfileMessage = String(cString: sf_strerror(nil))
        var status = stat()
        guard stat(path, &status) == 0 else { return AudioError(path: path, problem: describeOpenError(errno)) }
        if (status.st_mode & S_IFMT) == S_IFDIR { return AudioError(path: path, problem: "is a directory, not an audio file") }
        if status.st_size == 0 { return AudioError(path: path, problem: "empty file (0 bytes)") }
        return AudioError(path: path, problem: "not audio or truncated (libsndfile: \(sndfileMessage))")
    }

    static func describeOpenError(_ code: Int32) -> String {
        code == ENOENT ? "missing (no such file)" : "cannot open (\(String(cString: strerror(code))))"
    }
}

/// Sets an array's count without giving back capacity, so per-clip buffers stop allocating after the first clip.
func resize(_ array: inout [Float], to count: Int) {
    if array.count > count {
        array.removeLast(array.count - count)
    } else if array.count < count {
        array.append(contentsOf: repeatElement(0, count: count - array.count))
    }
}
