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

    /// `augmentation.noise_folder`: every .wav and .flac at any depth, whatever its name, unlabelled.
    func testNoiseRecordingsAreEveryAudioFileUnderTheFolder() throws {
        let root = try temporaryFolder(self)
        for file in ["noise/street/traffic.wav", "noise/fan.FLAC", "noise/babble/cafe/b-1.wav", "noise/readme.txt"] { touch(root + "/" + file) }
        let recordings = try Dataset.loadRecordings(folder: root + "/noise/")
        XCTAssertEqual(recordings.layout, .recordings)
        XCTAssertEqual(recordings.clips.map(\.path), ["babble/cafe/b-1.wav", "fan.FLAC", "street/traffic.wav"].map { root + "/noise/" + $0 })
        XCTAssertEqual(recordings.clips.map(\.speaker), ["babble/cafe", ".", "street"])
        XCTAssertEqual(Set(recordings.clips.map(\.label)), [0])
        for (path, problem) in [("/missing", "no such folder"), ("/noise/readme.txt", "not a folder"), ("/noise/street/x", "no such folder")] {
            XCTAssertThrowsError(try Dataset.loadRecordings(folder: root + path)) { XCTAssertEqual("\($0)", root + path + ": " + problem) }
        }
        try FileManager.default.createDirectory(atPath: root + "/empty/sub", withIntermediateDirectories: true)
        touch(root + "/empty/sub/notes.txt")
        XCTAssertThrowsError(try Dataset.loadRecordings(folder: root + "/empty")) {
            XCTAssertEqual("\($0)", root + "/empty: holds no .wav or .flac files")
        }
    }

    /// `--data ds`, `--data /abs/ds` and a link to it are one dataset: same root, same clip paths, one cache.
    func testHoweverThePathIsSpelledTheDatasetAndItsCacheAreTheSame() throws {
        let root = try temporaryFolder(self)
        for speaker in ["anna", "bob"] { for digit in 0..<3 { touch("\(root)/ds/\(digit)_\(speaker)_0.wav") } }
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: root + "/ds")
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(root))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let spellings = ["ds", "./ds/", root + "/ds", root + "/link", "link/../ds"]
        let datasets = try spellings.map { try Dataset.load(path: $0) }
        for (spelling, dataset) in zip(spellings, datasets) {
            XCTAssertEqual(dataset.root, root + "/ds", spelling)
            XCTAssertEqual(dataset.clips, datasets[0].clips, spelling)
            XCTAssertEqual(FeatureCache.fileName(for: dataset), FeatureCache.fileName(for: datasets[0]), spelling)
        }
        XCTAssertTrue(datasets[0].clips.allSatisfy { $0.path.hasPrefix(root + "/ds/") })
    }

    /// train.csv and test.csv side by side: two datasets, each named, with a cache file of its own.
    func testTwoCSVsInOneFolderAreTwoNamedDatasets() throws {
        let root = try temporaryFolder(self)
        try "audio,label\n1_a_0.wav,1\n".write(toFile: root + "/train.csv", atomically: true, encoding: .utf8)
        try "audio,label\n2_b_0.wav,2\n".write(toFile: root + "/test.csv", atomically: true, encoding: .utf8)
        let train = try Dataset.load(path: root + "/train.csv"), test = try Dataset.load(path: root + "/test.csv")
        XCTAssertEqual([train.name, test.name], ["train", "test"])
        XCTAssertTrue(FeatureCache.fileName(for: train).hasPrefix("train-"))
        XCTAssertNotEqual(FeatureCache.fileName(for: train), FeatureCache.fileName(for: test))
    }

    /// A file listed twice: with two labels an error naming both lines; with one, used once and reported.
    func testDuplicateCSVRowsAreRefusedOrUsedOnce() throws {
        let root = try temporaryFolder(self)
        try "audio,label\n3_a_0.wav,3\n4_a_0.wav,4\n./3_a_0.wav,7\n".write(toFile: root + "/c.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Dataset.load(path: root + "/c.csv")) {
            XCTAssertEqual("\($0)", root + "/c.csv: lines 2 and 4 list the same audio file ./3_a_0.wav with labels 3 and 7")
        }
        touch(root + "/3_a_0.wav")
        try "audio,label\n3_a_0.wav,3\n4_a_0.wav,4\n./3_a_0.wav,3\n".write(toFile: root + "/c.csv", atomically: true, encoding: .utf8)
        let dataset = try Dataset.load(path: root + "/c.csv")
        XCTAssertEqual(dataset.clips.map(\.path), [root + "/3_a_0.wav", root + "/4_a_0.wav"])
        XCTAssertEqual(dataset.skipped, [SkippedFile(path: root + "/./3_a_0.wav", reason: "line 4 repeats line 2; used once")])
        // 4_a_0.wav does not exist: listed before any cache build; a folder named as a clip is too.
        XCTAssertEqual(dataset.unreadableClips, [SkippedFile(path: root + "/4_a_0.wav", reason: "no such file")])
        try FileManager.default.createDirectory(atPath: root + "/4_a_0.wav", withIntermediateDirectories: true)
        XCTAssertEqual(dataset.unreadableClips, [SkippedFile(path: root + "/4_a_0.wav", reason: "not a regular file")])
    }
}
