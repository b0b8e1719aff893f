import Foundation
import Train
import XCTest

/// The seed's recipe (configs/fsdd.yaml: BCE, AdamW 1e-3, cosine, batch 32, 1 s crops, resnet18-w16,
/// 10 epochs) on the real FSDD recordings, each speaker held out in turn, against PyTorch's held-out
/// accuracies for the same recipe on the same splits.
final class FSDDAccuracyTests: XCTestCase {
    /// PyTorch on this machine type, trained on the other speakers (from the training-engine issue).
    static let pytorch = ["george": 0.676, "jackson": 0.846, "nicolas": 0.758, "theo": 0.872, "yweweler": 0.832]

    /// One run per speaker varies by about ±5 points with the seed alone (scripts/train-fsdd-pytorch.py
    /// over 6 seeds on theo: 0.678–0.826, mean 0.779), in PyTorch as here, so the comparison that can hold
    /// to 3 points is the mean over the five held-out speakers.
    func testHeldOutAccuracyMatchesPyTorchWithinThreePointsOverTheFiveSpeakers() throws {
        let root = repositoryRoot, fsdd = fsddRecordings
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let out = FileManager.default.temporaryDirectory.path + "/digits-dist-fsdd-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = try mpirun(2, ["train", "--config", root + "/configs/fsdd.yaml", "--data", fsdd, "--out", out + "/run",
                                 "--cache-dir", out + "/cache", "--threads", "1"], timeout: 1800)
        XCTAssertEqual(run.status, 0, run.summary)
        let summary = try JSONDecoder().decode(RunOutputs.Summary.self,
                                               from: Data(contentsOf: URL(fileURLWithPath: out + "/run/summary.json")))
        XCTAssertEqual(summary.folds.count, 5)
        var ours: [String: Double] = [:]
        for fold in summary.folds {
            let speaker = try XCTUnwrap(fold.validation_speakers.first)
            ours[speaker] = try XCTUnwrap(fold.metrics?.accuracy)
            print(String(format: "FSDD held-out %@: digits-dist %.3f, PyTorch %.3f", speaker, ours[speaker]!, Self.pytorch[speaker]!))
        }
        XCTAssertEqual(Set(ours.keys), Set(Self.pytorch.keys))
        let mean = ours.values.reduce(0, +) / 5, reference = Self.pytorch.values.reduce(0, +) / 5
        print(String(format: "FSDD mean held-out accuracy: digits-dist %.3f, PyTorch %.3f", mean, reference))
        XCTAssertEqual(mean, reference, accuracy: 0.03)
        for (speaker, accuracy) in ours { XCTAssertGreaterThan(accuracy, 0.6, "\(speaker) is far below any PyTorch run") }
    }
}
