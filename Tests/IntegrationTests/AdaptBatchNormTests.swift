import Foundation
import Train
import XCTest

/// `evaluate --adapt-batchnorm` and `predict --adapt-batchnorm`: each model's BatchNorm scales and shifts (entropy
/// minimisation) and statistics re-fitted to the clips before they are scored (in one process and sharded over
/// ranks); the checkpoint stays as it was.
final class AdaptBatchNormTests: XCTestCase {
    struct Metrics: Decodable, Equatable {
        var clips: Int
        var accuracy: Double
        var macroROCAUC: Double
        enum CodingKeys: String, CodingKey { case clips, accuracy, macroROCAUC = "macro_roc_auc" }
    }

    func testAdaptedEvaluationAndPredictionScoreEveryClipAndLeaveTheCheckpoint() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        let root = try temporaryFolder("adapt-batchnorm")
        func folder(_ name: String, speakers: [String], takes: Range<Int>) throws -> String {
            let path = root + "/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for speaker in speakers { for digit in 0..<10 { for take in takes {
                let file = "\(digit)_\(speaker)_\(take).wav"
                try FileManager.default.createSymbolicLink(atPath: path + "/" + file, withDestinationPath: fsddRecordings + "/" + file)
            } } }
            return path
        }
        let training = try folder("train", speakers: ["george", "jackson", "theo"], takes: 0..<3)
        let unseen = try folder("unseen", speakers: ["nicolas"], takes: 0..<3)
        let settings = ["architecture.width=4", "training.batch_size=8", "training.epochs=1", "dataset.validation_size=0.34"]
        let trained = try runProcess([try digitsDistBinary(), "train", "--data", training, "--out", root + "/run",
                                      "--cache-dir", root + "/cache", "--threads", "1"] + settings.flatMap { ["--set", $0] }, timeout: 600)
        XCTAssertEqual(trained.status, 0, trained.summary)
        let checkpoint = root + "/run"
        let files = try XCTUnwrap(FileManager.default.subpaths(atPath: checkpoint)).filter { $0.hasSuffix("final.ckpt") }
        XCTAssertEqual(files.count, 1)
        let original = try Data(contentsOf: URL(fileURLWithPath: checkpoint + "/" + files[0]))
        func evaluate(ranks: Int, _ options: [String], checkpoint: String = checkpoint) throws -> Metrics {
            let arguments = ["evaluate", "--checkpoint", checkpoint, "--data", unseen, "--cache-dir", root + "/cache", "--threads", "1"] + options
            let result = ranks == 1 ? try runProcess([try digitsDistBinary()] + arguments, timeout: 300)
                : try mpirun(ranks, arguments, timeout: 300)
            XCTAssertEqual(result.status, 0, result.summary)
            return try JSONDecoder().decode(Metrics.self, from: Data(result.stdout.utf8))
        }
        let plain = try evaluate(ranks: 1, [])
        let adapted = try evaluate(ranks: 1, ["--adapt-batchnorm"])
        let sharded = try evaluate(ranks: 2, ["--adapt-batchnorm"])
        for metrics in [plain, adapted, sharded] { XCTAssertEqual(metrics.clips, 30) }
        XCTAssertNotEqual(adapted, plain, "re-fitted statistics must change the scores")
        XCTAssertEqual(try evaluate(ranks: 1, ["--adapt-batchnorm"]), adapted, "adapting is deterministic")
        XCTAssertNotEqual(sharded, plain, "every rank must adapt")
        // The default adapts BatchNorm's scales and shifts too (TENT), before the statistics alone are re-fitted:
        // compared in the saved weights, since a model one epoch old can score the same either way.
        let entropyAdapted = root + "/entropy.ckpt", statisticsAdapted = root + "/statistics.ckpt"
        XCTAssertEqual(try evaluate(ranks: 1, ["--adapt-batchnorm", "--save-adapted", entropyAdapted]), adapted)
        let statisticsOnly = try evaluate(ranks: 1, ["--adapt-batchnorm", "--adapt-epochs", "0", "--save-adapted", statisticsAdapted])
        XCTAssertNotEqual(try parameters(statisticsAdapted), try parameters(entropyAdapted), "the entropy passes must change the model")
        XCTAssertNotEqual(statisticsOnly, plain)
        let negative = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", checkpoint, "--data", unseen,
                                       "--adapt-batchnorm", "--adapt-epochs=-1"], timeout: 120)
        XCTAssertNotEqual(negative.status, 0)
        XCTAssertTrue(negative.stderr.contains("--adapt-epochs -1: must be 0 or more"), negative.stderr)
        let alone = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", checkpoint, "--data", unseen,
                                    "--adapt-epochs", "3"], timeout: 120)
        XCTAssertNotEqual(alone.status, 0)
        XCTAssertTrue(alone.stderr.contains("--adapt-epochs needs --adapt-batchnorm"), alone.stderr)
        // Every rank scores with the same statistics (the shards' averaged): rank 0 saves them, and the saved
        // model scored plainly over two ranks gives what the adapted sharded evaluation gave.
        let savedSharded = root + "/adapted-sharded.ckpt"
        XCTAssertEqual(try evaluate(ranks: 2, ["--adapt-batchnorm", "--save-adapted", savedSharded]), sharded)
        XCTAssertEqual(try evaluate(ranks: 2, [], checkpoint: savedSharded), sharded)
        // The adapted model saved scores the clips as the adapted evaluation did, now without adapting.
        let saved = root + "/adapted.ckpt"
        XCTAssertEqual(try evaluate(ranks: 1, ["--adapt-batchnorm", "--save-adapted", saved]), adapted)
        XCTAssertEqual(try evaluate(ranks: 1, [], checkpoint: saved), adapted)
        // Every rank runs the entropy passes on all the clips: the adapted weights do not depend on the rank count.
        XCTAssertEqual(try Checkpoint.read(from: savedSharded).section("parameters"), try Checkpoint.read(from: saved).section("parameters"))
        XCTAssertNotEqual(try Checkpoint.read(from: saved).section("parameters"),
                          try Checkpoint.read(from: checkpoint + "/" + files[0]).section("parameters"), "the weights are adapted")
        let refused = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", checkpoint, "--data", unseen,
                                      "--save-adapted", saved], timeout: 120)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--save-adapted needs --adapt-batchnorm"), refused.stderr)
        let ensembleRefused = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", checkpoint, "--checkpoint", saved,
                                              "--data", unseen, "--adapt-batchnorm", "--save-adapted", root + "/two.ckpt"], timeout: 120)
        XCTAssertNotEqual(ensembleRefused.status, 0)
        XCTAssertTrue(ensembleRefused.stderr.contains("saves one model, and the checkpoints given hold 2"), ensembleRefused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/two.ckpt"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint + "/" + files[0])), original, "the checkpoint is not rewritten")

        // predict adapts to the files it is given, all read first; one unreadable file is reported, the rest predicted.
        struct Prediction: Decodable { var file: String; var probabilities: [Double] }
        let wavs = try FileManager.default.contentsOfDirectory(atPath: unseen).sorted().map { unseen + "/" + $0 }
        func predict(_ options: [String]) throws -> (status: Int32, lines: [Prediction], stderr: String) {
            let result = try runProcess([try digitsDistBinary(), "predict", "--checkpoint", checkpoint] + options, timeout: 300)
            return (result.status, try result.stdout.split(separator: "\n").map { try JSONDecoder().decode(Prediction.self, from: Data($0.utf8)) },
                    result.stderr)
        }
        let plainLines = try predict(wavs), adaptedLines = try predict(["--adapt-batchnorm"] + wavs)
        XCTAssertEqual(plainLines.status, 0, plainLines.stderr)
        XCTAssertEqual(adaptedLines.status, 0, adaptedLines.stderr)
        XCTAssertEqual(adaptedLines.lines.map(\.file), wavs)
        XCTAssertNotEqual(adaptedLines.lines.map(\.probabilities), plainLines.lines.map(\.probabilities))
        let withMissing = try predict(["--adapt-batchnorm", root + "/missing.wav"] + wavs)
        XCTAssertNotEqual(withMissing.status, 0)
        XCTAssertTrue(withMissing.stderr.contains(root + "/missing.wav"), withMissing.stderr)
        XCTAssertEqual(withMissing.lines.map(\.probabilities), adaptedLines.lines.map(\.probabilities), "adapted to the readable files alone")
        XCTAssertTrue(try predict(["--adapt-batchnorm", wavs[0]]).stderr.contains("--adapt-batchnorm with 1 file(s)"))
    }
}
