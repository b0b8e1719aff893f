import Foundation
import XCTest

/// `data --config` shows exactly the folds `train` runs, whatever training seed train draws, and the run
/// folder records them (folds.json).
final class FoldPlanTests: XCTestCase {
    struct FoldsFile: Decodable {
        struct Fold: Decodable { var fold: Int?; var validation_speakers: [String]; var validation_clips: Int }
        var fold_seed: Int
        var folds: [Fold]
    }

    func testDataShowsTheFoldsTrainRunsForADrawnSeed() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        let root = try temporaryFolder("folds")
        let settings = ["architecture.width=4", "training.batch_size=8", "training.epochs=1", "dataset.data_sample=0.02",
                        "dataset.validation_size=0.34", "dataset.folds=[0, 2]", "environment.seed=-1"].flatMap { ["--set", $0] }
        let shown = try runProcess([try digitsDistBinary(), "data", "--data", fsddRecordings] + settings, timeout: 120)
        XCTAssertEqual(shown.status, 0, shown.summary)
        // "fold K: N clips, speakers A,B; trains on M clips"
        let shownFolds = shown.stdout.split(separator: "\n").filter { $0.hasPrefix("fold ") }.map { line -> (Int, [String]) in
            let head = line.split(separator: ":")[0], speakers = line.split(separator: ";")[0].components(separatedBy: "speakers ")[1]
            return (Int(head.dropFirst(5))!, speakers.split(separator: ",").map(String.init))
        }
        XCTAssertEqual(shownFolds.map(\.0), [0, 2], shown.stdout)
        var drawnSeeds: Set<Int> = []
        for run in ["a", "b"] {
            let trained = try runProcess([try digitsDistBinary(), "train", "--data", fsddRecordings, "--out", root + "/" + run,
                                          "--cache-dir", root + "/cache", "--threads", "1"] + settings, timeout: 600)
            XCTAssertEqual(trained.status, 0, trained.summary)
            let file = try JSONDecoder().decode(FoldsFile.self, from: Data(contentsOf: URL(fileURLWithPath: root + "/\(run)/folds.json")))
            XCTAssertEqual(file.fold_seed, 0)
            XCTAssertEqual(file.folds.map { $0.fold ?? -1 }, shownFolds.map(\.0))
            XCTAssertEqual(file.folds.map(\.validation_speakers), shownFolds.map(\.1), "train validates on what data showed")
            let config = try String(contentsOfFile: root + "/\(run)/config.yaml", encoding: .utf8)
            let seedLine = config.split(separator: "\n").first { $0.contains("seed:") && !$0.contains("fold_seed") }
            drawnSeeds.insert(Int(seedLine?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1)
        }
        XCTAssertEqual(drawnSeeds.count, 2, "the two runs drew different training seeds: \(drawnSeeds)")
    }
}

/// The seed's test keys act: the test set is scored at the end of every fold with its final and best models,
/// exactly as `evaluate` scores those checkpoints, into summary.json and the report.
final class TestSetTests: XCTestCase {
    func testTheTestSetIsScoredWithTheFinalAndBestModelsOfEachFold() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        let root = try temporaryFolder("testset")
        let rows = ["audio,label,speaker"] + (0..<10).flatMap { digit in (40..<43).map { "\(digit)_jackson_\($0).wav,\(digit),jackson" } }
        try rows.joined(separator: "\n").write(toFile: root + "/test.csv", atomically: true, encoding: .utf8)
        // The same clips with absolute paths, for `evaluate` (which has no dataset.data_folder_test).
        try rows.enumerated().map { $0.offset == 0 ? $0.element : fsddRecordings + "/" + $0.element }.joined(separator: "\n")
            .write(toFile: root + "/absolute.csv", atomically: true, encoding: .utf8)
        let run = try mpirun(2, ["train", "--out", root + "/run", "--threads", "1"]
                             + tinyTrainingOptions(seed: 5, cacheDirectory: root + "/cache",
                                                   ["--set", "dataset.test_dataframe=\(root)/test.csv",
                                                    "--set", "dataset.data_folder_test=\(fsddRecordings)"]), timeout: 600)
        XCTAssertEqual(run.status, 0, run.summary)
        XCTAssertTrue(run.stderr.contains("run test set: accuracy "), run.stderr)
        struct Summary: Decodable {
            struct Fold: Decodable {
                struct Test: Decodable { var final: Metrics?; var best: Metrics? }
                struct Metrics: Decodable { var clips: Int; var accuracy: Double }
                var test: Test?
            }
            var folds: [Fold]
            var test_accuracy_mean: Double?
        }
        let summary = try JSONDecoder().decode(Summary.self, from: Data(contentsOf: URL(fileURLWithPath: root + "/run/summary.json")))
        let test = try XCTUnwrap(summary.folds.first?.test)
        let final = try XCTUnwrap(test.final), best = try XCTUnwrap(test.best)
        XCTAssertEqual(final.clips, 30)
        XCTAssertEqual(best.clips, 30)
        XCTAssertEqual(summary.test_accuracy_mean, final.accuracy)
        for (checkpoint, scored) in [("final.ckpt", final), ("best.ckpt", best)] {
            let evaluated = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", root + "/run/" + checkpoint,
                                            "--data", root + "/absolute.csv", "--cache-dir", root + "/cache", "--threads", "1"], timeout: 300)
            XCTAssertEqual(evaluated.status, 0, evaluated.summary)
            XCTAssertTrue(evaluated.stdout.contains("\"accuracy\":\(scored.accuracy)"), "\(checkpoint): \(scored.accuracy)\n\(evaluated.stdout)")
        }
        let report = try runProcess([try digitsDistBinary(), "report", root + "/run"], timeout: 120)
        XCTAssertEqual(report.status, 0, report.summary)
        let page = try String(contentsOfFile: root + "/run/report.html", encoding: .utf8)
        XCTAssertTrue(page.contains("Test accuracy (final)"))
        XCTAssertTrue(page.contains(String(format: "%.4f", final.accuracy)))
    }
}
