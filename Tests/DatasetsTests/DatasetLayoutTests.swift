@testable import Datasets
import Foundation
import XCTest

final class DatasetLayoutTests: XCTestCase {
    func testFSDDRecordingsAreFoundWithSpeakersAndLabels() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        let dataset = try Dataset.load(path: fsddRecordings)
        XCTAssertEqual(dataset.layout, .fsdd)
        XCTAssertEqual(dataset.clips.count, 2500)
        XCTAssertEqual(dataset.speakers, ["george", "jackson", "nicolas", "theo", "yweweler"])
        XCTAssertEqual(dataset.labelCounts, [Int](repeating: 250, count: 10))
        let clip = try XCTUnwrap(dataset.clips.first { $0.path.hasSuffix("/7_theo_12.wav") })
        XCTAssertEqual(clip.label, 7)
        XCTAssertEqual(clip.speaker, "theo")
    }

    func testAudioMNISTLayoutAlsoFromTheRepositoryRoot() throws {
        let root = try temporaryFolder(self)
        for speaker in ["01", "02"] { for digit in 0..<10 { touch("\(root)/data/\(speaker)/\(digit)_\(speaker)_0.wav") } }
        touch("\(root)/data/audioMNIST_meta.txt")
        touch("\(root)/data/02/5_01_3.wav")  // a clip filed under the wrong speaker
        let dataset = try Dataset.load(path: root)
        XCTAssertEqual(dataset.layout, .audioMNIST)
        XCTAssertEqual(dataset.clips.count, 20)
        XCTAssertEqual(dataset.speakers, ["01", "02"])
        XCTAssertEqual(dataset.skipped.map(\.path), ["\(root)/data/02/5_01_3.wav"])
    }

    func testCSVWithQuotedPathsAndInferredSpeakers() throws {
        let root = try temporaryFolder(self)
        try """
        audio,label
        "a dir/3_07_1.wav",3
        9_12_0.wav,9

        """.write(toFile: root + "/meta.csv", atomically: true, encoding: .utf8)
        let dataset = try Dataset.load(path: root + "/meta.csv")
        XCTAssertEqual(dataset.layout, .csv)
        XCTAssertEqual(dataset.clips.map(\.path), [root + "/9_12_0.wav", root + "/a dir/3_07_1.wav"].sorted())
        XCTAssertEqual(Set(dataset.clips.map(\.speaker)), ["07", "12"])
        XCTAssertEqual(dataset.clips.first { $0.speaker == "07" }?.label, 3)
    }

    func testCSVSpeakerColumnAndDataFolder() throws {
        let root = try temporaryFolder(self)
        try "label,audio,speaker\n4,x.wav,anna\n".write(toFile: root + "/m.csv", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/audio", withIntermediateDirectories: true)
        let dataset = try Dataset.load(path: root + "/m.csv", dataFolder: root + "/audio/")
        XCTAssertEqual(dataset.clips, [Clip(path: root + "/audio/x.wav", label: 4, speaker: "anna")])
        XCTAssertThrowsError(try Dataset.load(path: root + "/m.csv", dataFolder: root + "/absent")) {
            XCTAssertEqual("\($0)", root + "/m.csv: its audio folder \(root)/absent does not exist (set dataset.data_folder, or fetch the data)")
        }
    }

    func testBadCSVsNameTheFileAndLine() throws {
        let root = try temporaryFolder(self)
        let cases = [
            ("file,digit\na.wav,1\n", "header must name columns audio and label"),
            ("audio,label\na.wav,12\n", "line 2: label '12' is not a digit 0-9"),
            ("audio,label\na.wav,1,extra\n", "line 2 has 3 fields, the header has 2"),
            ("audio,label\n", "has no rows"),
        ]
        for (i, (text, problem)) in cases.enumerated() {
            let path = "\(root)/bad\(i).csv"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try Dataset.load(path: path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix(path + ": "), message)
                XCTAssertTrue(message.contains(problem), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    func testFoldersWithoutADatasetAreRefused() throws {
        let root = try temporaryFolder(self)
        touch(root + "/notes.txt")
        XCTAssertThrowsError(try Dataset.load(path: root)) { XCTAssertTrue("\($0)".contains("no dataset found")) }
        XCTAssertThrowsError(try Dataset.load(path: root + "/missing")) { XCTAssertTrue("\($0)".contains("no such file")) }
        XCTAssertThrowsError(try Dataset.load(path: root + "/notes.txt")) { XCTAssertTrue("\($0)".contains("not a folder or a .csv")) }
    }
}
