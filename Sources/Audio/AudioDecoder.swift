import CSndFile
import Foundation

/// Decodes whole files with libsndfile into reusable buffers. The file is read with one read() into
/// memory and handed to libsndfile through its virtual I/O: on a descriptor libsndfile issues ~30
/// small reads and seeks per WAV, which made decoding cost more than the log-mel of the clip.
/// One decoder per thread (it owns mutable scratch memory).
final class AudioDecoder {
    /// The current file's bytes and libsndfile's read position in them.
    private var bytes: UnsafeMutableRawPointer
    private var capacity: Int
    private var length = 0
    private var position = 0
    private var interleaved: [Float] = []
    /// libsndfile takes the callback table by mutable pointer, so each decoder passes its own copy.
    private var io = AudioDecoder.memoryIO

    init() {
        capacity = 1 << 16
        bytes = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { bytes.deallocate() }

    /// Mono samples (channels averaged in float32 like librosa.to_mono) into `samples`, whose
    /// capacity is reused. Returns the file's sample rate.
    func decode(path: String, into samples: inout [Float]) throws -> Int {
        try load(path: path)
        var info = SF_INFO()
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let handle = sf_open_virtual(&io, Int32(SFM_READ), &info, context) else {
            throw AudioError(path: path, problem: "not audio or truncated (libsndfile: \(String(cString: sf_strerror(nil))))")
        }
        let file = try SoundFileReader(handle: handle, info: info, path: path)
        let frames = file.frames, channels = file.channels
        resize(&samples, to: frames)
        if channels == 1 {
            try samples.withUnsafeMutableBufferPointer { try file.readFrames(into: $0.baseAddress!, path: path) }
            return file.sampleRate
        }
        resize(&interleaved, to: frames * channels)
        try interleaved.withUnsafeMutableBufferPointer { try file.readFrames(into: $0.baseAddress!, path: path) }
        // np.mean over channels in float32: a sequential sum, then one division.
        let channelCount = Float(channels)
        interleaved.withUnsafeBufferPointer { source in
            samples.withUnsafeMutableBufferPointer { mono in
                for frame in 0..<frames {
                    var sum: Float = 0
                    for channel in 0..<channels { sum += source[frame * channels + channel] }
                    mono[frame] = sum / channelCount
                }
            }
        }
        return file.sampleRate
    }

    /// Reads the whole file into `bytes`, growing it when needed.
    private func load(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw AudioError(path: path, problem: SoundFileReader.describeOpenError(errno)) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw AudioError(path: path, problem: SoundFileReader.describeOpenError(errno)) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw AudioError(path: path, problem: "is a directory, not an audio file") }
        let size = Int(status.st_size)
        if size == 0 { throw AudioError(path: path, problem: "empty file (0 bytes)") }
        if size > capacity {
            bytes.deallocate()
            capacity = size
            bytes = .allocate(byteCount: capacity, alignment: 16)
        }
        length = 0
        while length < size {
            let got = read(descriptor, bytes + length, size - length)
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw AudioError(path: path, problem: got == 0 ? "file shrank while reading" : "read failed (\(String(cString: strerror(errno))))")
            }
            length += got
        }
        position = 0
    }

    /// libsndfile's virtual I/O over `bytes`; user data is the unretained decoder.
    private static let memoryIO = SF_VIRTUAL_IO(
        get_filelen: { context in sf_count_t(decoder(context).length) },
        seek: { offset, whence, context in
            let file = decoder(context)
            let base = whence == SEEK_CUR ? file.position : whence == SEEK_END ? file.length : 0
            let target = base + Int(offset)
            guard target >= 0 else { return -1 }
            file.position = target
            return sf_count_t(target)
        },
        read: { destination, count, context in
            let file = decoder(context)
            let available = max(0, min(Int(count), file.length - file.position))
            if available > 0 { destination!.copyMemory(from: file.bytes + file.position, byteCount: available) }
            file.position += available
            return sf_count_t(available)
        },
        write: { _, _, _ in 0 },
        tell: { context in sf_count_t(decoder(context).position) })

    private static func decoder(_ context: UnsafeMutableRawPointer?) -> AudioDecoder {
        Unmanaged<AudioDecoder>.fromOpaque(context!).takeUnretainedValue()
    }
}
