import Foundation

/// librosa.filters.mel (Slaney mel scale, Slaney area norm, float32 weights), computed in Double with
/// librosa's exact sequence of operations and rounding points. Each triangular filter is nonzero only
/// over a short run of FFT bins, so it is stored as that run alone: projecting a power spectrum costs
/// about two multiply-adds per FFT bin instead of melBins per bin.
struct MelFilterbank {
    let melBins: Int
    let fftBins: Int
    /// Filter m covers FFT bins firstBin[m] ..< firstBin[m] + binCount[m], weights at weights[offset[m]...].
    let firstBin: [Int]
    let binCount: [Int]
    let offset: [Int]
    let weights: [Float]
    /// Filters librosa warns about: all-zero although their lower edge is not 0 Hz (fmax above Nyquist).
    let emptyFilterCount: Int

    init(settings: AudioSettings) {
        melBins = settings.melBins
        fftBins = settings.fftSize / 2 + 1
        // np.fft.rfftfreq(n_fft, d=1/sr)
        let binSpacing = 1.0 / (Double(settings.fftSize) * (1.0 / Double(settings.sampleRate)))
        let fftFrequencies = (0..<fftBins).map { Double($0) * binSpacing }
        let edges = MelFilterbank.melFrequencies(count: melBins + 2,
                                                 minFrequency: settings.minFrequency,
                                                 maxFrequency: settings.maxFrequency)
        var firstBin: [Int] = [], binCount: [Int] = [], offset: [Int] = [], weights: [Float] = []
        var emptyFilterCount = 0
        var row = [Float](repeating: 0, count: fftBins)
        for m in 0..<melBins {
            let lowerWidth = edges[m + 1] - edges[m], upperWidth = edges[m + 2] - edges[m + 1]
            let areaNorm = 2.0 / (edges[m + 2] - edges[m])
            for k in 0..<fftBins {
                let rising = -(edges[m] - fftFrequencies[k]) / lowerWidth
                let falling = (edges[m + 2] - fftFrequencies[k]) / upperWidth
                // librosa stores the triangle into a float32 array, then scales it in float64 (two roundings).
                let triangle = Float(max(0, min(rising, falling)))
                row[k] = Float(Double(triangle) * areaNorm)
            }
            let nonzero = row.indices.filter { row[$0] != 0 }
            let first = nonzero.first ?? 0, count = nonzero.isEmpty ? 0 : nonzero.last! - first + 1
            firstBin.append(first)
            binCount.append(count)
            offset.append(weights.count)
            weights.append(contentsOf: row[first..<first + count])
            if count == 0 && edges[m] != 0 { emptyFilterCount += 1 }
        }
        self.firstBin = firstBin
        self.binCount = binCount
        self.offset = offset
        self.weights = weights
        self.emptyFilterCount = emptyFilterCount
    }

    /// librosa.mel_frequencies(htk=False): np.linspace over the Slaney mel scale, mapped back to Hz.
    static func melFrequencies(count: Int, minFrequency: Double, maxFrequency: Double) -> [Double] {
        let minMel = hzToMel(minFrequency), maxMel = hzToMel(maxFrequency)
        let step = (maxMel - minMel) / Double(count - 1)
        return (0..<count).map { index in
            melToHz(index == count - 1 ? maxMel : Double(index) * step + minMel)
        }
    }

    // Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above.
    private static let linearHzPerMel = 200.0 / 3
    private static let logRegionStartHz = 1000.0
    private static let logRegionStartMel = logRegionStartHz / linearHzPerMel
    private static let logStep = log(6.4) / 27.0

    static func hzToMel(_ hz: Double) -> Double {
        hz >= logRegionStartHz
            ? logRegionStartMel + log(hz / logRegionStartHz) / logStep
            : hz / linearHzPerMel
    }

    static func melToHz(_ mel: Double) -> Double {
        mel >= logRegionStartMel
            ? logRegionStartHz * exp(logStep * (mel - logRegionStartMel))
            : linearHzPerMel * mel
    }

    /// out[m * outStride] = Σ_k filter_m[k] · power[k], for every mel band m.
    @inline(__always)
    func project(_ power: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        weights.withUnsafeBufferPointer { packed in
            for m in 0..<melBins {
                // baseAddress is nil only when every filter is empty (count 0).
                out[m * outStride] = packed.baseAddress.map { dot($0 + offset[m], power + firstBin[m], count: binCount[m]) } ?? 0
            }
        }
    }
}

/// Σ a[k]·b[k] with eight partial sums (strict float order would forbid the compiler from vectorising).
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var partial = SIMD8<Float>()
    var k = 0
    while k + 8 <= count {
        partial += UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self)
        k += 8
    }
    var sum = partial.sum()
    while k < count {
        sum += a[k] * b[k]
        k += 1
    }
    return sum
}
