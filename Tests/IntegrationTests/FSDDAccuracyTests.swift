import Foundation
import Train
import XCTest

/// The seed's recipe with digits-dist's defaults (configs/fsdd.yaml: BCE, AdamW 2e-3, cosine, batch 32, 1 s
/// crops, resnet18-w16, 20 epochs; short clips centred, the default speaker augmentations with reverberation,
/// SubSpectral BatchNorm in 4 bands) on the real FSDD recordings, each speaker held out in turn: accuracy on
/// voices never heard in training.
final class FSDDAccuracyTests: XCTestCase {
    /// scripts/loso.sh over seeds 1-6 gave per-seed means of 0.891-0.900 with these defaults (0.873-0.898
    /// without reverberation and bands, 0.860-0.886 at 1e-3, 0.818-0.842 before `PerClip`), 0.780-0.796 for the
    /// plain recipe at 10 epochs (and the PyTorch peer about the same as the plain recipe); one speaker moves by
    /// about ±5 points with the seed alone, the mean over five by about ±1. So this run (seed 1) must stay above
    /// the augmentations without `PerClip` (0.829 ± 0.012 over seeds 1-3, measured at 1e-3; the plain recipe
    /// 0.788), about five seed spreads below the defaults' mean of 0.896, and no speaker may collapse.
    static let meanBound = 0.84, speakerBound = 0.70

    func testHeldOutAccuracyOverTheFiveSpeakersBeatsThePlainRecipe() throws {
        let root = repositoryRoot, fsdd = fsddRecordings
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let out = try temporaryFolder("fsdd")
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
            print(String(format: "FSDD held-out %@: %.3f", speaker, ours[speaker]!))
        }
        XCTAssertEqual(Set(ours.keys), ["george", "jackson", "nicolas", "theo", "yweweler"])
        let mean = ours.values.reduce(0, +) / 5
        print(String(format: "FSDD mean held-out accuracy: %.3f (bound %.2f)", mean, Self.meanBound))
        XCTAssertGreaterThan(mean, Self.meanBound)
        for (speaker, accuracy) in ours { XCTAssertGreaterThan(accuracy, Self.speakerBound, "\(speaker) collapsed") }
    }
}
