import Foundation
import XCTest

/// `predict` and `evaluate` average the models they are given: the folds of a k-fold run folder, and the
/// runs of every `--checkpoint` (seeds, recipes). Each member's own prediction is the reference.
final class EnsembleTests: XCTestCase {
    struct Prediction: Decodable { var file: String; var probabilities: [Double] }

    func testPredictAndEvaluateAverageTheFoldsOfARunAndEveryRunGiven() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        let root = try temporaryFolder("ensemble")
        // Three speakers × ten digits × three takes of the real recordings: a cache built in seconds.
        let data = root + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let names = ["george", "jackson", "theo"].flatMap { speaker in (0..<10).flatMap { digit in (0..<3).map { "\(digit)_\(speaker)_\($0).wav" } } }
        for name in names { try FileManager.default.createSymbolicLink(atPath: data + "/" + name, withDestinationPath: fsddRecordings + "/" + name) }
        func train(_ run: String, _ extra: [String] = []) throws {
            let settings = ["architecture.width=4", "training.batch_size=8", "training.epochs=1", "dataset.validation_size=0.34",
                            "dataset.folds=[0, 1]"] + extra
            let result = try runProcess([try digitsDistBinary(), "train", "--data", data, "--out", root + "/" + run,
                                         "--cache-dir", root + "/cache", "--threads", "1"] + settings.flatMap { ["--set", $0] }, timeout: 600)
            XCTAssertEqual(result.status, 0, result.summary)
        }
        try train("seed-1", ["environment.seed=1"])
        try train("seed-2", ["environment.seed=2"])

        // Scored: one take of each digit (evaluate needs a dataset folder of its own).
        let scored = root + "/scored", scoredNames = (0..<10).map { "\($0)_theo_0.wav" }
        try FileManager.default.createDirectory(atPath: scored, withIntermediateDirectories: true)
        for name in scoredNames { try FileManager.default.createSymbolicLink(atPath: scored + "/" + name, withDestinationPath: fsddRecordings + "/" + name) }
        func predict(_ checkpoints: [String], _ options: [String] = []) throws -> [Prediction] {
            let result = try runProcess([try digitsDistBinary(), "predict"] + checkpoints.flatMap { ["--checkpoint", root + "/" + $0] }
                                        + options + scoredNames.map { scored + "/" + $0 }, timeout: 300)
            XCTAssertEqual(result.status, 0, result.summary)
            return try result.stdout.split(separator: "\n").map { try JSONDecoder().decode(Prediction.self, from: Data($0.utf8)) }
        }
        let members = try ["seed-1/fold-0", "seed-1/fold-1", "seed-2/fold-0", "seed-2/fold-1"].map { try predict([$0 + "/final.ckpt"]) }
        XCTAssertNotEqual(members[0][0].probabilities, members[2][0].probabilities, "two seeds give two models")
        func assertAverage(_ ensemble: [Prediction], of averaged: [[Prediction]], _ what: String) {
            XCTAssertEqual(ensemble.count, scoredNames.count, what)
            for (c, clip) in ensemble.enumerated() {
                XCTAssertEqual(clip.file, scored + "/" + scoredNames[c], what)
                for k in 0..<10 {
                    let mean = averaged.map { $0[c].probabilities[k] }.reduce(0, +) / Double(averaged.count)
                    XCTAssertEqual(clip.probabilities[k], mean, accuracy: 1e-6, "\(what): clip \(c), digit \(k)")
                }
            }
        }
        let runFolder = try predict(["seed-1"])
        assertAverage(runFolder, of: Array(members[0..<2]), "a run folder: its folds")
        let everyModel = try predict(["seed-1", "seed-2"])
        assertAverage(everyModel, of: members, "two run folders: their four folds")
        assertAverage(try predict(["seed-1/fold-1/final.ckpt", "seed-2/fold-0/final.ckpt"]), of: [members[1], members[2]], "two files")

        // evaluate scores the same average: its accuracy is the share of clips whose ensemble argmax is their digit.
        let evaluated = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", root + "/seed-1", "--checkpoint",
                                        root + "/seed-2", "--data", scored, "--cache-dir", root + "/cache", "--threads", "1"], timeout: 300)
        XCTAssertEqual(evaluated.status, 0, evaluated.summary)
        struct Metrics: Decodable { var clips: Int; var accuracy: Double }
        let metrics = try JSONDecoder().decode(Metrics.self, from: Data(evaluated.stdout.utf8))
        let right = zip(everyModel, 0..<10).filter { clip, digit in
            clip.probabilities.indices.max { clip.probabilities[$0] < clip.probabilities[$1] } == digit
        }.count
        XCTAssertEqual(metrics.clips, scoredNames.count)
        XCTAssertEqual(metrics.accuracy, Double(right) / Double(scoredNames.count), accuracy: 1e-9)
        XCTAssertTrue(evaluated.stderr.contains("(4 models)"), evaluated.stderr)

        // `--set` changes an inference key of every model: with test-time shifts the same models give other
        // probabilities. A training key is refused in a line.
        let shifted = try predict(["seed-1"], ["--set", "prediction.tta_shift_seconds=0.1"])
        let moved = zip(shifted, runFolder).flatMap { clip in zip(clip.0.probabilities, clip.1.probabilities).map { abs($0 - $1) } }
        XCTAssertGreaterThan(moved.max()!, 1e-6, "--set prediction.tta_shift_seconds must change the probabilities")
        let training = try runProcess([try digitsDistBinary(), "predict", "--checkpoint", root + "/seed-1", "--set", "training.epochs=3",
                                       scored + "/" + scoredNames[0]], timeout: 120)
        XCTAssertNotEqual(training.status, 0, training.summary)
        XCTAssertTrue(training.stderr.contains("--set training.epochs=3: only prediction.* keys apply to a trained model"), training.stderr)

        // A model that reads other features cannot join: one line naming it, and no prediction.
        try train("64-bands", ["environment.seed=1", "audio.mel_frequency_bins=64"])
        let refused = try runProcess([try digitsDistBinary(), "predict", "--checkpoint", root + "/seed-1", "--checkpoint",
                                      root + "/64-bands", scored + "/" + scoredNames[0]], timeout: 120)
        XCTAssertNotEqual(refused.status, 0, refused.summary)
        XCTAssertEqual(refused.stdout, "", refused.summary)
        XCTAssertTrue(refused.stderr.contains(root + "/64-bands/fold-0/final.ckpt: was trained on other audio settings than "
                                              + root + "/seed-1/fold-0/final.ckpt"), refused.stderr)
    }
}
