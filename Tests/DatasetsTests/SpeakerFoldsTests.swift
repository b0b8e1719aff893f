@testable import Datasets
import XCTest

final class SpeakerFoldsTests: XCTestCase {
    /// Speakers of very different sizes, as in real data.
    func unevenDataset() -> Dataset {
        var clips: [Clip] = []
        for s in 0..<13 {
            let size = 10 + (s * 37) % 90
            for i in 0..<size { clips.append(Clip(path: "s\(s)/\(i % 10)_s\(s)_\(i).wav", label: i % 10, speaker: "s\(s)")) }
        }
        return Dataset(root: "mem", layout: .fsdd, clips: clips)
    }

    func testNoSpeakerInTwoFoldsAndEveryClipInOne() throws {
        let dataset = unevenDataset()
        let folds = try SpeakerFolds(dataset: dataset, folds: 4, seed: 1)
        let speakers = folds.speakers.flatMap { $0 }
        XCTAssertEqual(speakers.count, Set(speakers).count)
        XCTAssertEqual(Set(speakers), Set(dataset.speakers))
        XCTAssertEqual(folds.clipIndices.flatMap { $0 }.sorted(), Array(dataset.clips.indices))
        for (fold, indices) in folds.clipIndices.enumerated() {
            XCTAssertEqual(Set(indices.map { dataset.clips[$0].speaker }), Set(folds.speakers[fold]))
        }
        XCTAssertEqual(folds.trainingIndices(excluding: 2).count, dataset.clips.count - folds.clipIndices[2].count)
    }

    func testFoldsAreBalancedWithinTheLargestSpeaker() throws {
        let dataset = unevenDataset()
        let largest = Dictionary(grouping: dataset.clips, by: \.speaker).values.map(\.count).max()!
        for seed in 0..<5 as Range<UInt64> {
            let sizes = try SpeakerFolds(dataset: dataset, folds: 4, seed: seed).clipIndices.map(\.count)
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, largest, "seed \(seed): \(sizes)")
        }
    }

    func testSameSeedSameFoldsAndSeedsMatter() throws {
        var clips: [Clip] = []
        for s in 0..<12 { for i in 0..<10 { clips.append(Clip(path: "\(s)/\(i)", label: i, speaker: "sp\(s)")) } }
        let dataset = Dataset(root: "mem", layout: .fsdd, clips: clips)
        let a = try SpeakerFolds(dataset: dataset, folds: 3, seed: 42).speakers
        XCTAssertEqual(a, try SpeakerFolds(dataset: dataset, folds: 3, seed: 42).speakers)
        let others = try (0..<10 as Range<UInt64>).map { try SpeakerFolds(dataset: dataset, folds: 3, seed: $0).speakers }
        XCTAssertGreaterThan(Set(others.map { $0.description }).count, 1, "the seed must change equal-size assignments")
    }

    func testTooManyFoldsIsAnError() {
        let dataset = Dataset(root: "mem", layout: .fsdd, clips: [Clip(path: "a", label: 0, speaker: "x"), Clip(path: "b", label: 1, speaker: "y")])
        XCTAssertThrowsError(try SpeakerFolds(dataset: dataset, folds: 3, seed: 0)) {
            XCTAssertEqual("\($0)", "mem: 3 folds need at least 3 speakers, the dataset has 2")
        }
        XCTAssertThrowsError(try SpeakerFolds(dataset: dataset, folds: 1, seed: 0))
    }
}

final class TrainingOnlySpeakersTests: XCTestCase {
    func testExtraSpeakersAreInEveryTrainingSetAndInNoFold() throws {
        let clips = (0..<4).flatMap { s in (0..<3).map { Clip(path: "/d/\($0)_s\(s)_0.wav", label: $0, speaker: "s\(s)") } }
        let extra = Dataset(root: "/synth", layout: .audioMNIST,
                            clips: (0..<2).map { Clip(path: "/synth/01/\($0)_01_0.wav", label: $0, speaker: "01") })
        let merged = Dataset(root: "/d", layout: .fsdd, clips: clips).addingTrainingOnly(extra)
        XCTAssertEqual(merged.trainingOnlySpeakers, ["extra/01"])
        XCTAssertNotEqual(merged.root, "/d", "its own cache")
        let folds = try SpeakerFolds(dataset: merged, folds: 4, seed: 3)
        XCTAssertEqual(Set(folds.speakers.flatMap { $0 }), ["s0", "s1", "s2", "s3"])
        let extraIndices = Set(merged.clips.indices.filter { merged.clips[$0].speaker == "extra/01" })
        XCTAssertEqual(extraIndices.count, 2)
        for fold in 0..<4 {
            XCTAssertTrue(extraIndices.isSubset(of: folds.trainingIndices(excluding: fold)))
            XCTAssertTrue(extraIndices.isDisjoint(with: folds.clipIndices[fold]))
        }
    }
}
