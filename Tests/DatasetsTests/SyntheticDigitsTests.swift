import Audio
@testable import Datasets
import Foundation
import XCTest

/// `digits-dist synth`: real espeak-ng and sox writing real WAVs in the AudioMNIST layout.
final class SyntheticDigitsTests: XCTestCase {
    func testSpeakersTakeTheGivenVoicesInTurnAndWriteTheAudioMNISTLayout() throws {
        try XCTSkipUnless(SyntheticDigits.findExecutable("espeak-ng") != nil && SyntheticDigits.findExecutable("sox") != nil,
                          "espeak-ng and sox absent (scripts/setup.sh installs them)")
        let root = try temporaryFolder(self)
        XCTAssertEqual(try SyntheticDigits.generate(into: root, speakers: 2, perDigit: 1, seed: 3, voices: ["en-us", "fr-fr"]), 20)
        let dataset = try Dataset.load(path: root)
        XCTAssertEqual(dataset.layout, .audioMNIST)
        XCTAssertEqual(dataset.speakers, ["01", "02"])
        XCTAssertEqual(dataset.labelCounts, [Int](repeating: 2, count: 10))
        let english = try AudioFile.read(path: root + "/01/4_01_0.wav"), french = try AudioFile.read(path: root + "/02/4_02_0.wav")
        XCTAssertEqual([english.sampleRate, french.sampleRate], [48000, 48000])
        XCTAssertGreaterThan(english.samples.count, 48000 / 10)
        XCTAssertNotEqual(english.samples.count, french.samples.count, "two voices say 'four' differently")
        XCTAssertThrowsError(try SyntheticDigits.generate(into: root + "/bad", speakers: 1, perDigit: 1, voices: ["en-us+f1"])) {
            XCTAssertTrue("\($0)".contains("expected espeak-ng voice names"), "\($0)")
        }
    }
}
