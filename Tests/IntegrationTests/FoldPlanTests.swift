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
