import Foundation
import XCTest
@testable import Audio

/// The FFTW / filterbank / dB pipeline against a naive double-precision reference (direct DFT),
/// on small settings so edge frames, padding and short inputs are all exercised.
final class LogMelReferenceTests: XCTestCase {
    private func smallSettings() -> AudioSettings {
        var settings = AudioSettings()
        settings.sampleRate = 8000
        settings.fftSize = 64
        settings.hopSize = 16
        settings.melBins = 12
        settings.minFrequency = 50
        settings.maxFrequency = 4000
        settings.topDB = 80
        return settings
    }

    /// librosa's definition, spelled out: centred zero-padded frames, periodic Hann, |DFT|², dense mel, dB.
    private func referenceLogMel(_ y: [Float], settings: AudioSettings) -> [Double] {
        let size = settings.fftSize, bins = size / 2 + 1
        let frames = 1 + y.count / settings.hopSize
        let filterbank = MelFilterbank(settings: settings)
        var dense = [[Double]](repeating: [Double](repeating: 0, count: bins), count: settings.melBins)
        for m in 0..<settings.melBins {
            for j in 0..<filterbank.binCount[m] {
                dense[m][filterbank.firstBin[m] + j] = Double(filterbank.weights[filterbank.offset[m] + j])
            }
        }
        let padded = [Double](repeating: 0, count: size / 2) + y.map(Double.init) + [Double](repeating: 0, count: size / 2)
        var mel = [Double](repeating: 0, count: settings.melBins * frames)
        for t in 0..<frames {
            let frame = (0..<size).map { k in padded[t * settings.hopSize + k] * (0.5 - 0.5 * cos(2 * .pi * Double(k) / Double(size))) }
            let power = (0..<bins).map { f -> Double in
                var re = 0.0, im = 0.0
                for (k, x) in frame.enumerated() {
                    re += x * cos(2 * .pi * Double(f * k) / Double(size))
                    im -= x * sin(2 * .pi * Double(f * k) / Double(size))
                }
                return re * re + im * im
            }
            for m in 0..<settings.melBins {
                mel[m * frames + t] = zip(dense[m], power).map { $0 * $1 }.reduce(0, +)
            }
        }
        let db = mel.map { 10 * log10(max(1e-10, $0)) }
        let floor = db.max()! - Double(settings.topDB)
        return db.map { max($0, floor) }
    }

    func testMatchesNaiveReference() throws {
        let settings = smallSettings()
        let extractor = LogMelExtractor(settings: settings)
        // Shorter than half a window, exactly one hop, not a multiple of the hop, several windows.
        for count in [5, 16, 100, 333] {
            let y = testSignal(count: count, sampleRate: 8000, seed: UInt64(count))
            let ours = extractor.logMel(y)
            let reference = referenceLogMel(y, settings: settings)
            XCTAssertEqual(ours.count, reference.count, "n=\(count)")
            let ceiling = reference.max()!
            var worst = 0.0
            for i in reference.indices where reference[i] > ceiling - 60 {
                worst = max(worst, abs(Double(ours[i]) - reference[i]))
            }
            XCTAssertLessThan(worst, 1e-3, "n=\(count): max |ours - reference| = \(worst) dB")
            // The top_db floor holds exactly.
            XCTAssertEqual(Double(ours.min()!), max(reference.min()!, ceiling - 80), accuracy: 1e-3, "n=\(count)")
        }
    }

    func testWritesIntoCallerMemoryLikeArrayVersion() {
        let settings = smallSettings()
        let extractor = LogMelExtractor(settings: settings)
        let y = testSignal(count: 250, sampleRate: 8000)
        let frames = LogMelExtractor.frameCount(sampleCount: y.count, settings: settings)
        var out = [Float](repeating: .nan, count: settings.melBins * frames)
        y.withUnsafeBufferPointer { input in out.withUnsafeMutableBufferPointer { extractor.logMel(input, into: $0.baseAddress!) } }
        XCTAssertEqual(out, extractor.logMel(y))
    }

    func testSilenceAndEmptyInputAreFlatFloorNotNaN() {
        let settings = smallSettings()
        let extractor = LogMelExtractor(settings: settings)
        let silence = extractor.logMel([Float](repeating: 0, count: 100))
        XCTAssertEqual(silence.count, settings.melBins * 7)
        XCTAssertTrue(silence.allSatisfy { $0 == -100 }, "power_to_db of zeros is 10·log10(amin) = -100 dB")
        let empty = extractor.logMel([])
        XCTAssertEqual(empty, [Float](repeating: -100, count: settings.melBins), "one all-padding frame")
    }
}
