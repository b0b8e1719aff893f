import Foundation
import Train
import XCTest

/// Training under real mpirun on the real FSDD recordings.
final class TrainingMPITests: XCTestCase {
    let fsdd = fsddRecordings

    func scratch() throws -> String { try temporaryFolder("train") }

    /// A tiny ResNet on a sliver of FSDD: two optimizer steps of a global batch of 8, in plain BatchNorm and
    /// without reverberation (the rank-count test runs those defaults apart; why is written above
    /// `assertAgreeWithinRounding`).
    func trainArguments(out: String, cache: String, threads: Int = 1, extra: [String] = []) -> [String] {
        ["train", "--data", fsdd, "--val-speakers", "theo", "--out", out, "--cache-dir", cache, "--threads", "\(threads)",
         "--set", "architecture.backbone=resnet18", "--set", "architecture.width=4", "--set", "training.batch_size=8",
         "--set", "training.epochs=1", "--set", "dataset.data_sample=0.008", "--set", "environment.seed=3",
         "--set", "training.warmup_epochs=0", "--set", "architecture.subspectral_bands=1",
         "--set", "augmentation.reverb_probability=0"] + extra
    }

    /// The run's state: weights and AdamW's first moment (a running mean of the summed gradients).
    func state(_ path: String) throws -> (weights: [Float], moment: [Float]) {
        let checkpoint = try Checkpoint.read(from: path)
        return (try XCTUnwrap(checkpoint.section("parameters")), try XCTUnwrap(checkpoint.section("adam.m")))
    }

    /// Two runs agree "within float rounding": on N ranks every gradient element is the same sum over the
    /// global batch as on one, added in another order (per-rank GEMM tiles, synchronised BatchNorm
    /// statistics, the all-reduce). A float sum of L terms in any order is within L·ε·Σ|terms| of the exact
    /// one (Higham, §4.2); the longest such sum here is a stem weight's gradient, L = 8 clips × 1,408 output
    /// positions, and the largest moment stands for Σ|terms|. The second step's gradient is taken at weights
    /// that moved by the first step's rounding, which stays within the same bound as long as that motion is
    /// rounding too: their weights agree to 1e-6 except for fewer than 1%, those whose first gradient is
    /// near zero, where Adam's g / (|g| + ε) turns rounding into up to a learning rate of difference.
    /// Winograd's weight gradient (Gᵀ·dU·G) turns an exactly zero gradient, such as a tap that only reads a
    /// column ReLU zeroed, into rounding noise, so these are more than with direct convolutions (0.3% of
    /// 44,710 weights on 2 and 4 ranks, where the control below differs in 99%).
    /// The bound holds only while no ReLU sees its input cross zero between the runs: a pre-activation within
    /// rounding of zero is kept on one rank count and cut on another, and that is not rounding any more. In a
    /// network this small one crossing shows: with 4 sub-spectral bands, layer4's groups hold 2 values a clip
    /// (16 in a batch of 8), and one such crossing of 2,048 outputs (1.97e-6 on 1 rank, 0 on 2, at the second
    /// step with mixup and reverberation on OpenBLAS's Haswell kernels) moved its group's Σdy by 15% and every
    /// gradient below by 1–8%. So each run here is a configuration measured free of crossings on the Haswell and
    /// SkylakeX kernel families; a crossing on another CPU would show as a failure of that one comparison alone.
    static let longestGradientSum = 8 * 64 * 22
    static let roundingBound = Float(longestGradientSum) * Float.ulpOfOne

    func assertAgreeWithinRounding(_ a: (weights: [Float], moment: [Float]), _ b: (weights: [Float], moment: [Float]),
                                   _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let scale = a.moment.map(abs).max()!
        let momentDifference = zip(a.moment, b.moment).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(momentDifference, Self.roundingBound * scale,
                          "\(label): gradient moments differ by \(momentDifference) of \(scale)", file: file, line: line)
        let weightDifferences = zip(a.weights, b.weights).map { abs($0 - $1) }
        XCTAssertLessThan(weightDifferences.filter { $0 > 1e-6 }.count, a.weights.count / 100,
                          "\(label): more than 1% of the weights differ by over 1e-6", file: file, line: line)
    }

    /// The project's determinism promise: the same seed, config and rank count give bitwise the same
    /// weights for any `--threads`, whichever kernels OpenBLAS runs on this CPU.
    func testThreadCountDoesNotChangeABit() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let root = try scratch()
        var weights: [Int: [Float]] = [:]
        for threads in [1, 2, 3] {
            let run = try mpirun(2, trainArguments(out: "\(root)/t\(threads)", cache: root + "/cache", threads: threads),
                                 timeout: 300)
            XCTAssertEqual(run.status, 0, run.summary)
            weights[threads] = try parameters("\(root)/t\(threads)/final.ckpt")
        }
        for threads in [2, 3] {
            XCTAssert(try XCTUnwrap(weights[1]).elementsEqual(try XCTUnwrap(weights[threads])) { $0.bitPattern == $1.bitPattern },
                      "2 ranks × 1 thread vs 2 ranks × \(threads) threads")
        }
    }

    func testOneGlobalBatchGivesTheSameWeightsOnOneTwoAndFourRanks() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let root = try scratch()
        var results: [Int: (weights: [Float], moment: [Float])] = [:]
        for ranks in [1, 2, 4] {
            let run = try mpirun(ranks, trainArguments(out: "\(root)/n\(ranks)", cache: root + "/cache",
                                                       extra: ["--set", "training.sync_batchnorm=true"]), timeout: 300)
            XCTAssertEqual(run.status, 0, run.summary)
            results[ranks] = try state("\(root)/n\(ranks)/final.ckpt")
        }
        let reference = try XCTUnwrap(results[1])
        XCTAssertGreaterThan(reference.weights.count, 10_000)
        for ranks in [2, 4] { assertAgreeWithinRounding(reference, try XCTUnwrap(results[ranks]), "\(ranks) ranks vs 1") }
        // mixup draws its partners and ratios from global positions too, so it trains the same on 1 and 2 ranks.
        let mixup = ["--set", "training.sync_batchnorm=true", "--set", "augmentation.mix_audio=Mixup",
                     "--set", "augmentation.mix_concentration=0.4"]
        var mixed: [(weights: [Float], moment: [Float])] = []
        for ranks in [1, 2] {
            let run = try mpirun(ranks, trainArguments(out: "\(root)/mix\(ranks)", cache: root + "/cache", extra: mixup), timeout: 300)
            XCTAssertEqual(run.status, 0, run.summary)
            mixed.append(try state("\(root)/mix\(ranks)/final.ckpt"))
        }
        assertAgreeWithinRounding(mixed[0], mixed[1], "mixup, 2 ranks vs 1")
        XCTAssertGreaterThan(zip(mixed[0].moment, reference.moment).map { abs($0 - $1) }.max()!,
                             Self.roundingBound * reference.moment.map(abs).max()!, "mixup must change training")
        // SubSpectral BatchNorm's statistics, one set per (channel, mel band), are synchronised the same way, and
        // the reverberation draws from global positions: the defaults train the same on 1 and 2 ranks.
        var banded: [(weights: [Float], moment: [Float])] = []
        for ranks in [1, 2] {
            let run = try mpirun(ranks, trainArguments(out: "\(root)/ssn\(ranks)", cache: root + "/cache",
                                                       extra: ["--set", "training.sync_batchnorm=true",
                                                               "--set", "architecture.subspectral_bands=4",
                                                               "--set", "augmentation.reverb_probability=0.5"]), timeout: 300)
            XCTAssertEqual(run.status, 0, run.summary)
            banded.append(try state("\(root)/ssn\(ranks)/final.ckpt"))
        }
        XCTAssertGreaterThan(banded[0].weights.count, reference.weights.count, "a γ and β per band")
        assertAgreeWithinRounding(banded[0], banded[1], "sub-bands and reverberation, 2 ranks vs 1")
        // Control: per-rank BatchNorm statistics on 4 ranks of 2 clips each really do change the gradients,
        // so the agreement above is not an accident of a check that could not fail.
        let perRank = try mpirun(4, trainArguments(out: "\(root)/local", cache: root + "/cache",
                                                   extra: ["--set", "training.sync_batchnorm=false"]), timeout: 300)
        XCTAssertEqual(perRank.status, 0, perRank.summary)
        let local = try state("\(root)/local/final.ckpt")
        XCTAssertGreaterThan(zip(reference.moment, local.moment).map { abs($0 - $1) }.max()!,
                             Self.roundingBound * reference.moment.map(abs).max()!, "per-rank statistics must show")
        XCTAssertGreaterThan(zip(reference.weights, local.weights).filter { abs($0 - $1) > 1e-6 }.count,
                             reference.weights.count / 2, "the weight check must tell per-rank statistics apart")
    }

    /// Per-rank BatchNorm (8 clips a rank): the ranks' running statistics are averaged after every step, so
    /// the validation, sharded over both ranks, scores exactly the model rank 0 saves: `evaluate` of
    /// final.ckpt gives the same accuracy and macro ROC-AUC, to the last bit.
    func testPerRankBatchNormValidatesExactlyTheSavedModel() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let root = try scratch()
        for (folder, speakers) in [("data", ["george", "jackson", "theo"]), ("theo", ["theo"])] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
            for speaker in speakers {
                for digit in 0..<10 {
                    for take in 0..<4 {
                        let name = "\(digit)_\(speaker)_\(take).wav"
                        try FileManager.default.createSymbolicLink(atPath: "\(root)/\(folder)/\(name)", withDestinationPath: fsdd + "/" + name)
                    }
                }
            }
        }
        let run = try mpirun(2, ["train", "--data", root + "/data", "--val-speakers", "theo", "--out", root + "/run",
                                 "--cache-dir", root + "/cache", "--threads", "1"]
                             + ["architecture.width=4", "training.batch_size=16", "training.sync_batchnorm=false", "training.epochs=2",
                                "environment.seed=4"].flatMap { ["--set", $0] }, timeout: 600)
        XCTAssertEqual(run.status, 0, run.summary)
        XCTAssertTrue(run.stderr.contains("per-rank BatchNorm statistics"), run.stderr)
        let summary = try JSONDecoder().decode(RunOutputs.Summary.self, from: Data(contentsOf: URL(fileURLWithPath: root + "/run/summary.json")))
        let validated = try XCTUnwrap(summary.folds.first?.metrics)
        XCTAssertEqual(validated.clips, 40)
        let evaluated = try runProcess([try digitsDistBinary(), "evaluate", "--checkpoint", root + "/run/final.ckpt", "--data", root + "/theo",
                                        "--cache-dir", root + "/cache", "--threads", "1"], timeout: 300)
        XCTAssertEqual(evaluated.status, 0, evaluated.summary)
        let scored = try JSONDecoder().decode(ClassificationMetrics.self, from: Data(evaluated.stdout.utf8))
        XCTAssertEqual(scored.clips, 40)
        XCTAssertEqual(scored.accuracy, validated.accuracy)
        XCTAssertEqual(try XCTUnwrap(scored.macroROCAUC), try XCTUnwrap(validated.macroROCAUC), "the validated model is the saved one")
    }

    func testTwoRanksTrainFiveSpeakerFoldsAndSummariseEveryFold() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let root = try scratch()
        let args = ["train", "--data", fsdd, "--out", root + "/run", "--cache-dir", root + "/cache", "--threads", "1",
                    "--set", "architecture.backbone=resnet18", "--set", "architecture.width=4",
                    "--set", "training.batch_size=16", "--set", "training.epochs=1", "--set", "dataset.data_sample=0.1",
                    "--set", "dataset.validation_size=0.2", "--set", "dataset.folds=[all]", "--set", "environment.seed=5",
                    "--set", "training.calculate_train_metric=true"]
        let run = try mpirun(2, args, timeout: 600)
        XCTAssertEqual(run.status, 0, run.summary)
        let summary = try JSONDecoder().decode(RunOutputs.Summary.self,
                                               from: Data(contentsOf: URL(fileURLWithPath: root + "/run/summary.json")))
        XCTAssertEqual(summary.ranks, 2)
        XCTAssertEqual(summary.folds.map(\.fold), [0, 1, 2, 3, 4])
        XCTAssertEqual(Set(summary.folds.flatMap(\.validation_speakers)), ["george", "jackson", "nicolas", "theo", "yweweler"])
        for fold in summary.folds {
            XCTAssertEqual(fold.validation_speakers.count, 1)
            XCTAssertEqual(fold.metrics?.clips, 50, "10% of one speaker's 500 clips")
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/run/fold-\(fold.fold!)/final.ckpt"))
        }
        XCTAssertNotNil(summary.accuracy_mean)
        let metricLines = try String(contentsOfFile: root + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metricLines.count, 5, "one validation per fold and epoch")
        for line in metricLines {
            let record = try JSONDecoder().decode(RunOutputs.EpochRecord.self, from: Data(line.utf8))
            XCTAssertEqual(record.training?.clips, 200, "training.calculate_train_metric scores the fold's training clips (10% of 4 speakers)")
        }
        XCTAssertFalse(run.stderr.contains("[rank 1]"), "only rank 0 logs when nothing fails:\n\(run.stderr)")
    }
}

/// The feature cache built by several ranks is the same file, byte for byte, as one process builds.
final class DistributedCacheTests: XCTestCase {
    func testThreeRanksBuildTheSameCacheAsOneProcessAndListTheSameSkips() throws {
        let fsdd = fsddRecordings
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let root = try temporaryFolder("cache")
        try Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt garbage".utf8).write(to: URL(fileURLWithPath: root + "/9_zed_0.wav"))
        var rows = ["audio,label,speaker", "\(root)/9_zed_0.wav,9,zed", "\(root)/missing.wav,1,zed"]
        for speaker in ["george", "theo"] { for digit in 0..<10 { for i in 0..<30 { rows.append("\(fsdd)/\(digit)_\(speaker)_\(i).wav,\(digit),\(speaker)") } } }
        try rows.joined(separator: "\n").write(toFile: root + "/clips.csv", atomically: true, encoding: .utf8)

        var files: [Int: Data] = [:]
        for ranks in [1, 3] {
            let run = try mpirun(ranks, ["cache", "--data", root + "/clips.csv", "--cache-dir", "\(root)/cache\(ranks)"], timeout: 300)
            XCTAssertEqual(run.status, 0, run.summary)
            XCTAssertTrue(run.stdout.contains("600 clips of 602 usable, 2 skipped"), run.stdout)
            XCTAssertTrue(run.stderr.contains("missing.wav"), run.stderr)
            XCTAssertTrue(run.stderr.contains("9_zed_0.wav"), run.stderr)
            let name = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: "\(root)/cache\(ranks)").first)
            files[ranks] = try Data(contentsOf: URL(fileURLWithPath: "\(root)/cache\(ranks)/\(name)"))
        }
        XCTAssertGreaterThan(files[1]?.count ?? 0, 600 * 128 * 4)
        XCTAssertEqual(files[1], files[3], "the 3-rank cache must equal the 1-process cache byte for byte")
    }
}

/// `--fold-parallel`: four ranks in two groups train two folds at once, each exactly as two ranks train it alone.
final class FoldParallelTests: XCTestCase {
    func testTwoGroupsOfTwoRanksEqualTwoRanksTrainingTheFoldsInTurn() throws {
        let fsdd = fsddRecordings
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        let root = try temporaryFolder("folds")
        func arguments(_ out: String) -> [String] {
            ["train", "--data", fsdd, "--out", out, "--cache-dir", root + "/cache", "--threads", "1",
             "--set", "architecture.backbone=resnet18", "--set", "architecture.width=4", "--set", "training.batch_size=8",
             "--set", "training.epochs=2", "--set", "dataset.data_sample=0.02", "--set", "dataset.validation_size=0.5",
             "--set", "dataset.folds=[all]", "--set", "environment.seed=2"]
        }
        let sequential = try mpirun(2, arguments(root + "/sequential"), timeout: 300)
        XCTAssertEqual(sequential.status, 0, sequential.summary)
        let parallel = try mpirun(4, arguments(root + "/parallel") + ["--fold-parallel"], timeout: 300)
        XCTAssertEqual(parallel.status, 0, parallel.summary)
        XCTAssertTrue(parallel.stderr.contains("fold-parallel: 2 groups"), parallel.stderr)
        for fold in 0..<2 {
            let a = try Checkpoint.read(from: "\(root)/sequential/fold-\(fold)/final.ckpt").section("parameters")
            let b = try Checkpoint.read(from: "\(root)/parallel/fold-\(fold)/final.ckpt").section("parameters")
            XCTAssertNotNil(a)
            XCTAssertEqual(a, b, "fold \(fold) must train identically in its group")
        }
        let summary = try JSONDecoder().decode(RunOutputs.Summary.self,
                                               from: Data(contentsOf: URL(fileURLWithPath: root + "/parallel/summary.json")))
        XCTAssertEqual(summary.folds.map(\.fold), [0, 1])
        let records = try String(contentsOfFile: root + "/parallel/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(records.count, 4, "2 folds × 2 epochs, whole lines from both group leaders")
        for record in records { XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(record.utf8))) }
    }
}
