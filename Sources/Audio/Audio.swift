import CSndFile
import CFFTW
import CSoxr

/// The sample rate every clip is resampled to before features are computed (the seed's `audio.sample_rate`).
public let defaultSampleRate = 22_050
