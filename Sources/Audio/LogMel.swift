import CFFTW
import Foundation

/// 10 / ln(10): converts a natural log of power to decibels.
private let decibelsPerNeper = Float(10 / M_LN10)
/// power_to_db's amin and its level, 10·log10(1e-10) = -100 dB.
private let amin: Float = 1e-10
private let aminDecibels: Float = -100

/// FFTW's planner keeps global state and is not thread-safe; every plan creation and destruction holds this.
private let fftwPlannerLock = NSLock()

/// Log-mel spectrogram equal to librosa. NOT thread-safe: make one per thread. Its FFTW plan is
/// created once in init (plan creation serialised under a global lock, since FFTW planning is not thread-safe).
///
/// librosa 0.11 semantics reproduced here: frames centred with zero padding of fftSize/2 on both
/// sides, periodic Hann window, |STFT|², Slaney mel filters, then power_to_db(ref=1, amin=1e-10,
/// top_db) where the top_db floor is relative to the maximum of the whole clip.
public final class LogMelExtractor {
    public let settings: AudioSettings
    private let filterbank: MelFilterbank
    private let fftBins: Int
    private let window: UnsafeMutablePointer<Float>          // [fftSize] periodic Hann
    private let frame: UnsafeMutablePointer<Float>           // [fftSize] windowed frame, FFTW input
    private let spectrum: UnsafeMutablePointer<fftwf_complex> // [fftBins] FFTW output
    private let power: UnsafeMutablePointer<Float>           // [fftBins] |spectrum|²
    private let plan: fftwf_plan

    // Per-clip buffers of logMel(path:), kept so their capacity is reused from clip to clip.
    private let decoder = AudioDecoder()
    private var decoded: [Float] = []
    private var resampled: [Float] = []

    /// Traps on impossible settings (a programming error); call `settings.validate()` first on user input.
    public init(settings: AudioSettings) {
        if let problem = settings.problem { preconditionFailure("audio settings: \(problem)") }
        self.settings = settings
        filterbank = MelFilterbank(settings: settings)
        let size = settings.fftSize
        fftBins = size / 2 + 1
        window = fftwf_alloc_real(size)
        frame = fftwf_alloc_real(size)
        spectrum = fftwf_alloc_complex(fftBins)
        power = fftwf_alloc_real(fftBins)
        // scipy.signal.get_window("hann", N, fftbins=True), in double, stored as float.
        for k in 0..<size { window[k] = Float(0.5 - 0.5 * cos(2 * Double.pi * Double(k) / Double(size))) }
        fftwPlannerLock.lock()
        // FFTW_ESTIMATE, not MEASURE: MEASURE's FFTs are ~1 µs faster per frame, but it picks its
        // algorithm by timing, so features would differ in the last bits between processes (MPI ranks,
        // reruns) and break bit-reproducible feature caches and training runs.
        plan = fftwf_plan_dft_r2c_1d(Int32(size), frame, spectrum, UInt32(FFTW_ESTIMATE))!
        fftwPlannerLock.unlock()
    }

    deinit {
        fftwPlannerLock.lock()
        fftwf_destroy_plan(plan)
        fftwPlannerLock.unlock()
        fftwf_free(window)
        fftwf_free(frame)
        fftwf_free(spectrum)
        fftwf_free(power)
    }

    /// Frames librosa produces for `sampleCount` samples at settings.sampleRate (center=True): 1 + n / hop.
    public static func frameCount(sampleCount: Int, settings: AudioSettings) -> Int {
        1 + sampleCount / settings.hopSize
    }

    /// The one-line warning librosa emits when fmax is above Nyquist and top filters stay empty, or nil.
    public static func emptyFilterWarning(settings: AudioSettings) -> String? {
        let empty = MelFilterbank(settings: settings).emptyFilterCount
        guard empty > 0 else { return nil }
        let fmax = String(format: "%g", settings.maxFrequency), nyquist = String(format: "%g", Double(settings.sampleRate) / 2)
        return "mel filterbank: \(empty) of \(settings.melBins) filters are empty because fmax \(fmax) Hz "
            + "is above Nyquist (\(nyquist) Hz); as in librosa they stay empty (at the top_db floor)"
    }

    /// (melBins, frames) row-major Float32 log-mel (dB) of samples already at settings.sampleRate.
    public func logMel(_ samples: [Float]) -> [Float] {
        let count = settings.melBins * LogMelExtractor.frameCount(sampleCount: samples.count, settings: settings)
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            samples.withUnsafeBufferPointer { logMel($0, into: out.baseAddress!) }
            initialized = count
        }
    }

    /// Same, writing into caller memory of melBins*frames floats (used by the feature cache to avoid copies).
    public func logMel(_ samples: UnsafeBufferPointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let frames = LogMelExtractor.frameCount(sampleCount: samples.count, settings: settings)
        for t in 0..<frames {
            powerSpectrum(samples, frameIndex: t)
            filterbank.project(power, into: out + t, outStride: frames)
        }
        powerToDB(out, count: settings.melBins * frames)
    }

    /// Convenience: decode + resample + log-mel; throws AudioError for bad files (incl. zero samples,
    /// all-zero audio, NaN/Inf samples).
    public func logMel(path: String) throws -> (values: [Float], frames: Int) {
        let rate = try decoder.decode(path: path, into: &decoded)
        try LogMelExtractor.checkSamples(decoded, path: path)
        if rate != settings.sampleRate {
            try decoded.withUnsafeBufferPointer {
                try Resampler.resample($0, from: rate, to: settings.sampleRate, into: &resampled, path: path)
            }
        }
        let signal = rate == settings.sampleRate ? decoded : resampled
        let frames = LogMelExtractor.frameCount(sampleCount: signal.count, settings: settings)
        return (logMel(signal), frames)
    }

    /// Fills `power` with |FFT(window · frame t)|² of the zero-padded, centred frame t.
    @inline(__always)
    private func powerSpectrum(_ samples: UnsafeBufferPointer<Float>, frameIndex t: Int) {
        let size = settings.fftSize
        // Frame t starts at sample t·hop − size/2 of the unpadded signal; outside [0, n) is padding.
        let start = t * settings.hopSize - size / 2
        let lo = max(0, -start), hi = max(lo, min(size, samples.count - start))
        frame.update(repeating: 0, count: lo)
        if let y = samples.baseAddress {
            for k in lo..<hi { frame[k] = y[start + k] * window[k] }
        }
        (frame + hi).update(repeating: 0, count: size - hi)
        fftwf_execute_dft_r2c(plan, frame, spectrum)
        let reIm = UnsafeMutableRawPointer(spectrum).assumingMemoryBound(to: Float.self)
        for k in 0..<fftBins {
            let re = reIm[2 * k], im = reIm[2 * k + 1]
            power[k] = re * re + im * im
        }
    }

    /// power_to_db(ref=1.0, amin=1e-10, top_db) in float32, in place: the floor is relative to the clip's maximum.
    /// 10·log10(x) is taken as (10/ln 10)·ln(x): glibc's logf is twice as fast as its log10f.
    private func powerToDB(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for i in 0..<count {
            // At or below amin the exact librosa value -100 dB, not the rounding of the log formula.
            let db = values[i] > amin ? decibelsPerNeper * log(values[i]) : aminDecibels
            values[i] = db
            maximum = max(maximum, db)
        }
        let floor = maximum - settings.topDB
        for i in 0..<count { values[i] = max(values[i], floor) }
    }

    /// librosa would happily compute features of these; they are corrupt or useless training clips.
    static func checkSamples(_ samples: [Float], path: String) throws {
        // One branch-free integer pass (integer ORs vectorise; float reductions would not):
        // an all-ones exponent marks NaN/Inf, any magnitude bit marks a nonzero sample.
        var nonFinite: UInt32 = 0, magnitudeBits: UInt32 = 0
        for sample in samples {
            let bits = sample.bitPattern
            nonFinite |= (bits & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0
            magnitudeBits |= bits & 0x7FFF_FFFF
        }
        if nonFinite != 0, let index = samples.firstIndex(where: { !$0.isFinite }) {
            throw AudioError(path: path, problem: "sample \(index) is \(samples[index]) (NaN/Inf samples)")
        }
        if magnitudeBits == 0 { throw AudioError(path: path, problem: "all \(samples.count) samples are zero") }
    }
}

extension AudioSettings {
    /// Why these settings cannot produce features, or nil if they can.
    var problem: String? {
        if sampleRate < 1 { return "sample rate \(sampleRate) must be positive" }
        if fftSize < 2 { return "fft size \(fftSize) must be at least 2" }
        if hopSize < 1 { return "hop size \(hopSize) must be positive" }
        if melBins < 1 { return "mel bins \(melBins) must be positive" }
        if !(minFrequency >= 0 && minFrequency < maxFrequency) {
            return "mel range \(minFrequency)...\(maxFrequency) Hz must satisfy 0 <= min < max"
        }
        if !(topDB >= 0) { return "top dB \(topDB) must be non-negative" }
        return nil
    }

    /// Throws a one-line AudioError for settings that cannot produce features.
    public func validate() throws {
        if let problem { throw AudioError(path: "audio settings", problem: problem) }
    }
}
