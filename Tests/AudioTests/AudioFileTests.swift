import XCTest
@testable import Audio

final class AudioFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory(for: self)
    }

    /// Every encoding round-trips within its quantisation step.
    func testReadsEveryEncodingScaledLikeSoundfile() throws {
        let signal = testSignal(count: 3000, sampleRate: 16_000)
        let tolerance: [SampleEncoding: Float] = [.pcm8: 2.0 / 128, .pcm16: 2.0 / 32768, .pcm24: 2.0 / 8_388_608,
                                                   .pcm32: 1e-7, .float32: 0, .flac16: 2.0 / 32768]
        for encoding in SampleEncoding.allCases {
            let path = "\(directory)/\(encoding).\(encoding == .flac16 ? "flac" : "wav")"
            try AudioFile.write(path: path, interleaved: signal, channels: 1, sampleRate: 16_000, encoding: encoding)
            let decoded = try AudioFile.read(path: path)
            XCTAssertEqual(decoded.sampleRate, 16_000, "\(encoding)")
            XCTAssertEqual(decoded.samples.count, signal.count, "\(encoding)")
            let maxError = zip(decoded.samples, signal).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(maxError, tolerance[encoding]!, "\(encoding)")
            let info = try AudioFile.info(path: path)
            XCTAssertEqual(info.frames, 3000)
            XCTAssertEqual(info.sampleRate, 16_000)
            XCTAssertEqual(info.channels, 1)
        }
    }

    /// 16-bit PCM decodes to exactly int16 / 32768, as soundfile does (librosa's y of the 22,050 Hz fixture).
    func testSixteenBitMatchesSoundfileExactly() throws {
        let decoded = try AudioFile.read(path: try fixturePath("chirp22050.wav"))
        let reference = try NPY.read(path: try fixturePath("chirp22050.y.npy")).values
        XCTAssertEqual(decoded.sampleRate, 22_050)
        XCTAssertEqual(decoded.samples, reference)
    }

    func testWriteWAVIsMono16BitAndClips() throws {
        let path = "\(directory)/clipped.wav"
        try AudioFile.writeWAV(path: path, samples: [0, 0.5, 1.5, -1.5], sampleRate: 8000)
        let decoded = try AudioFile.read(path: path)
        XCTAssertEqual(decoded.samples[1], 0.5)
        XCTAssertEqual(decoded.samples[2], 32767.0 / 32768)  // clipped, not wrapped to negative
        XCTAssertEqual(decoded.samples[3], -1)
    }

    func testStereoAndMultichannelMixDownByAveraging() throws {
        let left = testSignal(count: 500, sampleRate: 8000, seed: 1), right = testSignal(count: 500, sampleRate: 8000, seed: 2)
        let stereo = zip(left, right).flatMap { [$0, $1] }
        let path = "\(directory)/stereo.wav"
        try AudioFile.write(path: path, interleaved: stereo, channels: 2, sampleRate: 8000, encoding: .float32)
        let decoded = try AudioFile.read(path: path)
        XCTAssertEqual(decoded.samples, zip(left, right).map { ($0 + $1) / 2 })
        XCTAssertEqual(try AudioFile.info(path: path).channels, 2)

        let third = testSignal(count: 500, sampleRate: 8000, seed: 3)
        let threeChannels = (0..<500).flatMap { [left[$0], right[$0], third[$0]] }
        try AudioFile.write(path: path, interleaved: threeChannels, channels: 3, sampleRate: 8000, encoding: .float32)
        XCTAssertEqual(try AudioFile.read(path: path).samples, (0..<500).map { (left[$0] + right[$0] + third[$0]) / 3 })
    }

    // MARK: bad input: one-line AudioError naming the file, never a crash

    private func assertAudioError(_ path: String, mentions keyword: String, extractOnly: Bool = false,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let extractor = LogMelExtractor(settings: AudioSettings())
        var attempts: [(String, () throws -> Void)] = [("logMel(path:)", { _ = try extractor.logMel(path: path) })]
        if !extractOnly { attempts.append(("read", { _ = try AudioFile.read(path: path) })) }
        for (name, attempt) in attempts {
            XCTAssertThrowsError(try attempt(), name, file: file, line: line) { error in
                guard let audioError = error as? AudioError else {
                    return XCTFail("\(name): \(error) is not an AudioError", file: file, line: line)
                }
                let text = audioError.description
                XCTAssertTrue(text.hasPrefix(path + ": "), "\(name): \(text)", file: file, line: line)
                XCTAssertFalse(text.contains("\n"), "\(name): \(text)", file: file, line: line)
                XCTAssertTrue(text.contains(keyword), "\(name): '\(text)' lacks '\(keyword)'", file: file, line: line)
            }
        }
    }

    func testMissingFile() {
        assertAudioError("\(directory)/nope.wav", mentions: "missing")
        XCTAssertThrowsError(try AudioFile.info(path: "\(directory)/nope.wav"))
    }

    func testEmptyFile() throws {
        let path = "\(directory)/empty.wav"
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        assertAudioError(path, mentions: "empty file")
        XCTAssertThrowsError(try AudioFile.info(path: path)) { XCTAssertTrue("\($0)".contains("empty file")) }
    }

    func testDirectoryIsNotAudio() {
        assertAudioError(directory, mentions: "directory")
    }

    func testGarbageFile() throws {
        let path = "\(directory)/garbage.wav"
        _ = FileManager.default.createFile(atPath: path, contents: Data((0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }))
        assertAudioError(path, mentions: "not audio")
    }

    func testTruncatedHeader() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: try fixturePath("chirp22050.wav")))
        let path = "\(directory)/cut-header.wav"
        try whole.prefix(30).write(to: URL(fileURLWithPath: path))
        assertAudioError(path, mentions: "truncated")
    }

    /// A WAV cut mid-data: libsndfile would silently return the shorter clip.
    func testTruncatedWAVData() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: try fixturePath("chirp22050.wav")))
        let path = "\(directory)/cut-data.wav"
        try whole.prefix(20_000).write(to: URL(fileURLWithPath: path))
        assertAudioError(path, mentions: "truncated")
        XCTAssertThrowsError(try AudioFile.info(path: path)) { XCTAssertTrue("\($0)".contains("should be"), "\($0)") }
    }

    /// A FLAC stream cut mid-data decodes fewer frames than its header (STREAMINFO) promises.
    func testTruncatedData() throws {
        let source = "\(directory)/whole.flac"
        try AudioFile.write(path: source, interleaved: testSignal(count: 40_000, sampleRate: 16_000), channels: 1,
                            sampleRate: 16_000, encoding: .flac16)
        let whole = try Data(contentsOf: URL(fileURLWithPath: source))
        let path = "\(directory)/cut-data.flac"
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        assertAudioError(path, mentions: "truncated")
    }

    func testZeroSamples() throws {
        let path = "\(directory)/zero.wav"
        try AudioFile.writeWAV(path: path, samples: [], sampleRate: 22_050)
        assertAudioError(path, mentions: "zero samples")
    }

    func testAllZeros() throws {
        let path = "\(directory)/silent.wav"
        try AudioFile.writeWAV(path: path, samples: [Float](repeating: 0, count: 4000), sampleRate: 22_050)
        assertAudioError(path, mentions: "all 4000 samples are zero", extractOnly: true)
        XCTAssertEqual(try AudioFile.read(path: path).samples.count, 4000)
    }

    func testNaNAndInfSamples() throws {
        for (name, bad) in [("nan", Float.nan), ("inf", Float.infinity), ("-inf", -Float.infinity)] {
            var samples = testSignal(count: 2000, sampleRate: 22_050)
            samples[1234] = bad
            let path = "\(directory)/\(name).wav"
            try AudioFile.write(path: path, interleaved: samples, channels: 1, sampleRate: 22_050, encoding: .float32)
            assertAudioError(path, mentions: "sample 1234", extractOnly: true)
            assertAudioError(path, mentions: "NaN/Inf", extractOnly: true)
        }
    }

    func testResamplerRejectsInvalidRates() {
        XCTAssertThrowsError(try Resampler.resample([1, 2, 3], from: 0, to: 22_050)) { error in
            XCTAssertTrue("\(error)".contains("0 Hz"), "\(error)")
        }
    }

    func testSettingsValidation() {
        var settings = AudioSettings()
        XCTAssertNoThrow(try settings.validate())
        settings.hopSize = 0
        XCTAssertThrowsError(try settings.validate()) { XCTAssertTrue("\($0)".contains("hop size 0")) }
    }
}
