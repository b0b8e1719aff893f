/// The sample rate every clip is resampled to before features are computed (the seed's `audio.sample_rate`).
public let defaultSampleRate = 22_050

/// The audio front end's settings: the seed's `audio.*` keys, with librosa's names in the comments.
public struct AudioSettings: Hashable, Codable, Sendable {
    /// Every clip is resampled to this rate before features (`sr`).
    public var sampleRate: Int = 22_050
    /// FFT size and window length (`n_fft`).
    public var fftSize: Int = 2048
    /// Hop between frames (`hop_length`).
    public var hopSize: Int = 512
    /// Seconds between two frames' starts (one hop).
    public var hopSeconds: Double { Double(hopSize) / Double(sampleRate) }
    /// Number of mel bands (`n_mels`).
    public var melBins: Int = 128
    /// Lowest and highest mel band edges in Hz (`fmin`, `fmax`).
    public var minFrequency: Double = 50
    public var maxFrequency: Double = 16_000
    /// Dynamic range kept below the clip's maximum (`power_to_db(top_db=80)`).
    public var topDB: Float = 80

    public init() {}
}
