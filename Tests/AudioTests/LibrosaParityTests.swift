import XCTest
@testable import Audio

/// Features and resampled signals against librosa 0.11 references (scripts/make-librosa-fixtures.py).
final class LibrosaParityTests: XCTestCase {
    /// The fixture's clips: 22,050 Hz (no resampling), 48 kHz (down) and the real 8 kHz FSDD clip (up).
    private func clips() throws -> [(name: String, path: String)] {
        var clips = [("chirp22050", try fixturePath("chirp22050.wav")), ("chirp48000", try fixturePath("chirp48000.wav"))]
        if let fsdd = try? fsddRecordingPath("3_theo_7.wav") { clips.append(("3_theo_7", fsdd)) }
        return clips
    }

    func testLogMelMatchesLibrosaAtAllRates() throws {
        let extractor = LogMelExtractor(settings: AudioSettings())
        for (name, path) in try clips() {
            let reference = try NPY.read(path: try fixturePath("\(name).logmel.npy"))
            let (values, frames) = try extractor.logMel(path: path)
            XCTAssertEqual(reference.shape, [128, frames], name)
            XCTAssertEqual(values.count, reference.values.count, name)
            let diff = dbDifference(values, reference: reference.values, range: 60)
            print(String(format: "%@: %d frames, %d bins within 60 dB of max: mean |diff| %.5f dB, p99 %.5f dB, max %.5f dB",
                         name, frames, diff.compared, diff.mean, diff.p99, diff.max))
            XCTAssertLessThanOrEqual(diff.mean, 0.02, name)
            XCTAssertLessThanOrEqual(diff.p99, 0.2, name)
        }
        _ = try fsddRecordingPath("3_theo_7.wav")  // report the FSDD clip as skipped when absent
    }

    func testFrameCountMatchesLibrosa() throws {
        for (name, _) in try clips() {
            let y = try NPY.read(path: try fixturePath("\(name).y.npy"))
            let logmel = try NPY.read(path: try fixturePath("\(name).logmel.npy"))
            XCTAssertEqual(LogMelExtractor.frameCount(sampleCount: y.values.count, settings: AudioSettings()), logmel.shape[1], name)
        }
        XCTAssertEqual(LogMelExtractor.frameCount(sampleCount: 0, settings: AudioSettings()), 1)
        XCTAssertEqual(LogMelExtractor.frameCount(sampleCount: 511, settings: AudioSettings()), 1)
        XCTAssertEqual(LogMelExtractor.frameCount(sampleCount: 512, settings: AudioSettings()), 2)
    }

    /// Decoding + libsoxr driven like python-soxr should reproduce librosa.load's y bit for bit.
    func testDecodeAndResampleMatchLibrosaLoad() throws {
        for (name, path) in try clips() {
            let reference = try NPY.read(path: try fixturePath("\(name).y.npy")).values
            let decoded = try AudioFile.read(path: path)
            let y = try Resampler.resample(decoded.samples, from: decoded.sampleRate, to: 22_050)
            XCTAssertEqual(y.count, reference.count, name)
            let maxDiff = zip(y, reference).map { abs($0 - $1) }.max() ?? .infinity
            print("\(name): resampled \(decoded.sampleRate) -> 22050 Hz, \(y.count) samples, max |y - librosa y| = \(maxDiff)")
            XCTAssertLessThanOrEqual(maxDiff, 1e-6, name)
        }
    }

    /// The extractor reuses its decode and resample buffers: a longer clip must not leak into the next one.
    func testRepeatedExtractionIsIdentical() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let longer = directory + "/longer48k.wav"
        try AudioFile.writeWAV(path: longer, samples: testSignal(count: 72_000, sampleRate: 48_000), sampleRate: 48_000)
        let path48k = try fixturePath("chirp48000.wav")
        let extractor = LogMelExtractor(settings: AudioSettings())
        let first = try extractor.logMel(path: path48k)
        _ = try extractor.logMel(path: longer)
        _ = try extractor.logMel(path: try fixturePath("chirp22050.wav"))
        let second = try extractor.logMel(path: path48k)
        XCTAssertEqual(first.frames, second.frames)
        XCTAssertEqual(first.values, second.values)
        let fresh = try LogMelExtractor(settings: AudioSettings()).logMel(path: path48k)
        XCTAssertEqual(first.values, fresh.values)
    }

    /// One extractor per thread, created concurrently (FFTW planning is serialised), gives the same features.
    func testConcurrentExtractorsAgree() throws {
        let paths = [try fixturePath("chirp48000.wav"), try fixturePath("chirp22050.wav")]
        let expected = try paths.map { try LogMelExtractor(settings: AudioSettings()).logMel(path: $0).values }
        let results = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: 8)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            let extractor = LogMelExtractor(settings: AudioSettings())
            for _ in 0..<5 { results[worker] = (try? extractor.logMel(path: paths[worker % 2]).values) ?? [] }
        }
        for worker in 0..<8 { XCTAssertEqual(results[worker], expected[worker % 2], "worker \(worker)") }
    }

    func testMelFilterbankMatchesLibrosa() throws {
        var settings = AudioSettings()
        settings.fftSize = 512
        settings.melBins = 64
        let reference = try NPY.read(path: try fixturePath("mel-22050-512-64-50-16000.npy"))
        XCTAssertEqual(reference.shape, [64, 257])
        let filterbank = MelFilterbank(settings: settings)
        var dense = [Float](repeating: 0, count: 64 * 257)
        for m in 0..<64 {
            for j in 0..<filterbank.binCount[m] {
                dense[m * 257 + filterbank.firstBin[m] + j] = filterbank.weights[filterbank.offset[m] + j]
            }
        }
        let maxDiff = zip(dense, reference.values).map { abs($0 - $1) }.max()!
        print("mel filterbank (64 x 257): max |ours - librosa| = \(maxDiff), largest weight \(reference.values.max()!)")
        XCTAssertLessThanOrEqual(maxDiff, 1e-9)
        let librosaEmpty = (0..<64).filter { m in (0..<257).allSatisfy { reference.values[m * 257 + $0] == 0 } }.count
        XCTAssertEqual(filterbank.emptyFilterCount, librosaEmpty)
        XCTAssertGreaterThan(librosaEmpty, 0)
    }

    func testEmptyFilterWarningOnlyAboveNyquist() throws {
        let warning = try XCTUnwrap(LogMelExtractor.emptyFilterWarning(settings: AudioSettings()))
        print("warning: \(warning)")
        XCTAssertFalse(warning.contains("\n"))
        XCTAssertTrue(warning.contains("16000"))
        var nyquist = AudioSettings()
        nyquist.maxFrequency = 11_025
        XCTAssertNil(LogMelExtractor.emptyFilterWarning(settings: nyquist))
    }
}
