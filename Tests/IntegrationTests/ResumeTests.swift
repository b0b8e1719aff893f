import Audio
import Datasets
import Foundation
import NN
import Train
import XCTest

/// Checkpoints and resume under real mpirun: killed ranks, fewer ranks, damaged files, Slurm's
/// stop signal and a full disk. Each run is a tiny ResNet on a sliver of FSDD with a checkpoint every
/// two steps.
final class ResumeTests: XCTestCase {
    let fsdd = fsddRecordings
    var root = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsdd), "shared FSDD data absent")
        root = try temporaryFolder("resume")
    }

    /// 6 epochs × 12 steps of a global batch of 8 (per-rank batches below 16: synchronised BatchNorm):
    /// long enough that a kill or signal after the first checkpoints lands mid-run even on a fast machine.
    func arguments(out: String, _ extra: [String] = []) -> [String] {
        ["train", "--data", fsdd, "--val-speakers", "theo", "--out", out, "--cache-dir", root + "/cache", "--threads", "1",
         "--set", "architecture.backbone=resnet18", "--set", "architecture.width=4", "--set", "training.batch_size=8",
         "--set", "training.epochs=6", "--set", "dataset.data_sample=0.05", "--set", "environment.seed=11",
         "--set", "training.checkpoint_every_steps=2", "--set", "training.keep_checkpoints=3"] + extra
    }

    func stepFiles(_ out: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints")) ?? [])
            .filter { $0.hasSuffix(".ckpt") }.sorted()
    }

    /// Waits (up to a minute) until `out` holds at least `count` step checkpoints.
    func waitForCheckpoints(_ out: String, count: Int) {
        let deadline = Date().addingTimeInterval(60)
        while stepFiles(out).count < count && Date() < deadline { usleep(20_000) }
    }

    func uninterrupted(ranks: Int, _ extra: [String] = [], environment: [String: String] = [:]) throws -> [Float] {
        let run = try mpirun(ranks, arguments(out: root + "/full", extra), timeout: 300, environment: environment)
        XCTAssertEqual(run.status, 0, run.summary)
        return try parameters(root + "/full/final.ckpt")
    }

    func testKilledRankThenResumeGivesBitwiseTheSameWeights() throws {
        try assertKillAndResumeIsBitwiseExact(["--set", "training.epochs=30"])  // 360 steps: the kill after step 4 lands mid-run
    }

    /// Every augmentation draws from (seed, epoch, position), so a resumed run augments the rest of its
    /// crops exactly as the uninterrupted one (and the weights' moving average continues exactly).
    func testKilledRankThenResumeGivesBitwiseTheSameWeightsWithEveryAugmentation() throws {
        // Recorded noise (augmentation.noise_folder): a hum shorter than a crop and a longer hiss, real WAVs.
        let noise = root + "/noise"
        try FileManager.default.createDirectory(atPath: noise + "/room", withIntermediateDirectories: true)
        try AudioFile.writeWAV(path: noise + "/room/hum.wav", samples: (0..<4_000).map { Float(0.2 * sin(Double($0) * 0.047)) },
                               sampleRate: 16_000)
        var hiss = SplitMix64(seed: 3)
        try AudioFile.writeWAV(path: noise + "/hiss.wav", samples: (0..<32_000).map { _ in 0.1 * hiss.nextFloat() - 0.05 },
                               sampleRate: 16_000)
        let augmentations = ["augmentation.noise_folder=" + noise,"augmentation.time_shift_seconds=0.2", "augmentation.trim_seconds=0.05", "augmentation.tempo=0.1", "augmentation.vocal_tract=0.1", "augmentation.equalizer_db=6",
                             "augmentation.gain_db=6", "augmentation.reverb_probability=0.5", "augmentation.noise_probability=0.5", "augmentation.frequency_masks=2",
                             "augmentation.time_masks=2", "augmentation.mix_audio=Mixup", "training.label_smoothing=0.1",
                             "training.ema_decay=0.9"]
        let settings = augmentations.flatMap { ["--set", $0] }
        try assertKillAndResumeIsBitwiseExact(["--set", "training.epochs=30"] + settings)
        // The weights' moving average is saved beside them, and it is the model inference loads.
        let final = try Checkpoint.read(from: root + "/full/final.ckpt")
        let averaged = try XCTUnwrap(final.section("ema.parameters"))
        XCTAssertNotEqual(averaged, final.section("parameters"))
        let model = try TrainedModel(path: root + "/full/final.ckpt").model
        XCTAssertEqual(Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount)), averaged)
        // Control: the augmentations really act (one epoch with and without them).
        var weights: [[Float]] = []
        let off = ["augmentation.time_shift_seconds=0", "augmentation.tempo=0", "augmentation.vocal_tract=0", "augmentation.gain_db=0",
                   "augmentation.reverb_probability=0", "augmentation.noise_probability=0", "augmentation.frequency_masks=0",
                   "augmentation.time_masks=0"]
        for (name, extra) in [("plain", off.flatMap { ["--set", $0] }), ("augmented", settings)] {
            let run = try mpirun(2, arguments(out: root + "/" + name, ["--set", "training.epochs=1"] + extra), timeout: 300)
            XCTAssertEqual(run.status, 0, run.summary)
            weights.append(try parameters(root + "/\(name)/final.ckpt"))
        }
        XCTAssertNotEqual(weights[0], weights[1], "the augmentations must change training")
    }

    /// Trains `extra` uninterrupted, then kills a rank of the same run after its second checkpoint and
    /// resumes it: the final weights must be bitwise equal. Returns them.
    @discardableResult
    func assertKillAndResumeIsBitwiseExact(_ long: [String], environment: [String: String] = [:],
                                           file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        let expected = try uninterrupted(ranks: 2, long, environment: environment)
        let out = root + "/killed"
        let killed = try mpirun(2, arguments(out: out, long), timeout: 300, environment: environment) { mpirunPid in
            self.waitForCheckpoints(out, count: 2)
            let ranks = descendantProcesses(of: mpirunPid).filter {
                (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8))?.hasPrefix("digits-dist") ?? false
            }
            if let victim = ranks.last { kill(victim, SIGKILL) }
        }
        XCTAssertNotEqual(killed.status, 0, killed.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/final.ckpt"), "the kill came too late to test anything")
        let resumed = try mpirun(2, arguments(out: out, long + ["--resume"]), timeout: 300, environment: environment)
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("resuming at step"), resumed.stderr)
        XCTAssertEqual(try parameters(out + "/final.ckpt"), expected, "resumed weights must be bitwise equal")
        let losses = { (folder: String) in try String(contentsOfFile: folder + "/steps.jsonl", encoding: .utf8) }
        XCTAssertEqual(try losses(out), try losses(root + "/full"), "the step record reads as if the run never stopped")
        return expected
    }

    /// Mixed precision keeps the promise: bf16 (forced on, so it runs wherever the CPU has AVX512_BF16, even
    /// where it would not pay; validation in bf16 too) resumes bitwise, the run folder records it, and
    /// resuming it in Float32 is refused in one line instead of continuing in another arithmetic.
    func testBF16RunResumesBitwiseAndRefusesToContinueInFloat32() throws {
        try XCTSkipUnless(Precision.bf16Available, "this CPU has no AVX512_BF16")
        let mixed = ["--set", "training.epochs=30", "--set", "environment.mixed_precision_training=true",
                     "--set", "environment.mixed_precision_inference=true"]
        let expected = try assertKillAndResumeIsBitwiseExact(mixed, environment: ["DIGITS_DIST_BF16": "on"])
        let summary = try String(contentsOfFile: root + "/full/summary.json", encoding: .utf8)
        XCTAssertTrue(summary.contains("\"training\" : \"bf16\""), summary)
        XCTAssertTrue(summary.contains("\"inference\" : \"bf16\""), summary)
        XCTAssertEqual(try Checkpoint.read(from: root + "/full/final.ckpt").metadata.precision, "bf16")

        let full = root + "/full"
        try FileManager.default.removeItem(atPath: full + "/final.ckpt")
        let refused = try mpirun(2, arguments(out: full, mixed + ["--resume"]), timeout: 300,
                                 environment: ["DIGITS_DIST_BF16": "off"])
        XCTAssertNotEqual(refused.status, 0, refused.summary)
        let line = try XCTUnwrap(refused.stderr.split(separator: "\n").first { $0.contains("cannot resume") }, refused.stderr)
        XCTAssertTrue(line.contains("it trained in bf16, this run would train in Float32"), String(line))

        // Control: the same run in Float32 ends elsewhere, so bf16 really acted.
        let plain = try mpirun(2, arguments(out: root + "/plain", ["--set", "training.epochs=30"]), timeout: 300)
        XCTAssertEqual(plain.status, 0, plain.summary)
        XCTAssertNotEqual(try parameters(root + "/plain/final.ckpt"), expected)
    }

    /// The checkpoint records the noise recordings a run was augmented with: a resume after one of them
    /// changed is refused in one line, as after a change of the dataset's files.
    func testResumeRefusesChangedNoiseRecordings() throws {
        let noise = root + "/noise"
        try FileManager.default.createDirectory(atPath: noise, withIntermediateDirectories: true)
        let hum = (0..<8_000).map { Float(0.2 * sin(Double($0) * 0.05)) }
        try AudioFile.writeWAV(path: noise + "/hum.wav", samples: hum, sampleRate: 16_000)
        let out = root + "/noisy"
        let short = ["--set", "training.epochs=1", "--set", "augmentation.noise_probability=1", "--set", "augmentation.noise_folder=" + noise]
        let trained = try mpirun(1, arguments(out: out, short), timeout: 300)
        XCTAssertEqual(trained.status, 0, trained.summary)
        XCTAssertTrue(trained.stderr.contains("augmentation.noise_folder: 1 noise recordings"), trained.stderr)
        try FileManager.default.removeItem(atPath: out + "/final.ckpt")
        try FileManager.default.moveItem(atPath: noise + "/hum.wav", toPath: root + "/hum.wav")  // keeps its time
        try AudioFile.writeWAV(path: noise + "/hum.wav", samples: hum.map { $0 / 2 }, sampleRate: 16_000)
        let refused = try mpirun(1, arguments(out: out, short + ["--resume"]), timeout: 300)
        XCTAssertNotEqual(refused.status, 0, refused.summary)
        let line = try XCTUnwrap(refused.stderr.split(separator: "\n").first { $0.contains("cannot resume") }, refused.stderr)
        XCTAssertTrue(line.contains("the noise recordings"), String(line))
        // Control: with the recording as it was, the same resume goes on.
        try FileManager.default.removeItem(atPath: noise + "/hum.wav")
        try FileManager.default.moveItem(atPath: root + "/hum.wav", toPath: noise + "/hum.wav")
        let resumed = try mpirun(1, arguments(out: out, short + ["--resume"]), timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("resuming at step"), resumed.stderr)
    }

    /// A CPU without bf16 (DIGITS_DIST_BF16=off stands for one) trains a mixed-precision config in Float32,
    /// saying why in one line, bit for bit as the same config without mixed precision.
    func testMixedPrecisionFallsBackToFloat32BitwiseWithOneLineSayingWhy() throws {
        let short = ["--set", "training.epochs=1"]
        let fallback = try mpirun(2, arguments(out: root + "/fallback", short + ["--set", "environment.mixed_precision_training=true"]),
                                  timeout: 300, environment: ["DIGITS_DIST_BF16": "off"])
        XCTAssertEqual(fallback.status, 0, fallback.summary)
        XCTAssertTrue(fallback.stderr.contains("training precision: Float32: mixed precision asked for, bf16 turned off by "
                                               + "DIGITS_DIST_BF16=off"), fallback.stderr)
        let summary = try String(contentsOfFile: root + "/fallback/summary.json", encoding: .utf8)
        XCTAssertTrue(summary.contains("\"training\" : \"fp32\""), summary)
        let plain = try mpirun(2, arguments(out: root + "/plain", short), timeout: 300)
        XCTAssertEqual(plain.status, 0, plain.summary)
        XCTAssertEqual(try parameters(root + "/fallback/final.ckpt"), try parameters(root + "/plain/final.ckpt"))
    }

    /// Float rounding differs between rank counts and grows with every step, so this resume continues for
    /// 16 steps of a 24-step run: from the step-8 checkpoint of a finished 2-rank run, on 1 rank. In plain
    /// BatchNorm without reverberation: with the defaults' 4 sub-spectral bands and reverberation the weights
    /// ended 2.2e-4 apart on OpenBLAS's Haswell kernels, where a ReLU input that rounding moves across zero
    /// weighs 4 times as much in its group's statistics (TrainingMPITests, above `assertAgreeWithinRounding`).
    func testResumingOnFewerRanksEndsWithinFloatRounding() throws {
        let out = root + "/fewer"
        let short = ["--set", "training.epochs=2", "--set", "training.keep_checkpoints=100",
                     "--set", "architecture.subspectral_bands=1", "--set", "augmentation.reverb_probability=0"]
        let full = try mpirun(2, arguments(out: out, short), timeout: 300)
        XCTAssertEqual(full.status, 0, full.summary)
        let expected = try parameters(out + "/final.ckpt")
        try FileManager.default.removeItem(atPath: out + "/final.ckpt")
        for file in stepFiles(out) where file > "step-00000008.ckpt" {
            try FileManager.default.removeItem(atPath: out + "/checkpoints/" + file)
        }
        let resumed = try mpirun(1, arguments(out: out, short + ["--resume"]), timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("resuming at step 8 of 24"), resumed.stderr)
        let weights = try parameters(out + "/final.ckpt")
        XCTAssertNotEqual(weights, expected, "1 rank sums in another order than 2; equal weights would mean nothing was resumed")
        let difference = zip(weights, expected).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(difference, 1e-4, "largest weight difference after resuming 2 → 1 ranks")
    }

    func testTruncatedAndBitFlippedCheckpointsArePassedOver() throws {
        let expected = try uninterrupted(ranks: 1)
        let out = root + "/full"
        try FileManager.default.removeItem(atPath: out + "/final.ckpt")
        let files = stepFiles(out).map { out + "/checkpoints/" + $0 }
        XCTAssertEqual(files.count, 3)
        let newest = try Data(contentsOf: URL(fileURLWithPath: files[2]))
        try newest.prefix(newest.count / 2).write(to: URL(fileURLWithPath: files[2]))
        var flipped = try Data(contentsOf: URL(fileURLWithPath: files[1]))
        flipped[flipped.count - 5] ^= 0x04
        try flipped.write(to: URL(fileURLWithPath: files[1]))

        let resumed = try mpirun(1, arguments(out: out, ["--resume"]), timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("skipping checkpoint \(files[2]): truncated"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("skipping checkpoint \(files[1]): checksum mismatch"), resumed.stderr)
        let step = try XCTUnwrap(Int(files[0].split(separator: "-").last!.prefix(8)))
        XCTAssertTrue(resumed.stderr.contains("resuming at step \(step) "), resumed.stderr)
        XCTAssertEqual(try parameters(out + "/final.ckpt"), expected)
    }

    func testStopSignalWritesACheckpointExitsWithTheDocumentedCodeAndResumes() throws {
        let out = root + "/signal"
        let long = ["--set", "training.checkpoint_every_steps=1000", "--set", "training.epochs=30"]
        let stopped = try mpirun(2, arguments(out: out, long), timeout: 300) { pid in
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline,
                  ((try? String(contentsOfFile: out + "/steps.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count < 3 {
                usleep(20_000)
            }
            kill(pid, SIGUSR1)
        }
        XCTAssertEqual(stopped.status, StopSignal.exitCode, stopped.summary)
        XCTAssertTrue(stopped.stderr.contains("stopped by a signal after step"), stopped.stderr)
        let written = stepFiles(out)
        XCTAssertFalse(written.isEmpty, "a checkpoint must appear on the stop signal")
        let step = try Checkpoint.read(from: out + "/checkpoints/" + written.last!).metadata.step
        let resumed = try mpirun(2, arguments(out: out, long + ["--resume"]), timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("resuming at step \(step) "), resumed.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/final.ckpt"))
    }

    func testAFullDiskFailsClearlyAndKeepsThePreviousCheckpoint() throws {
        let mountPoint = root + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // A checkpoint of this model is about 350 kB: room for the run's files and one checkpoint, not two.
        let mounted = try runProcess(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", mountPoint], timeout: 30)
        try XCTSkipUnless(mounted.status == 0, "cannot mount a tmpfs here: \(mounted.stderr)")
        defer { _ = try? runProcess(["umount", mountPoint], timeout: 30) }
        let out = mountPoint + "/run"
        let run = try mpirun(1, arguments(out: out, ["--set", "training.checkpoint_every_steps=1"]), timeout: 300)
        XCTAssertNotEqual(run.status, 0, run.summary)
        XCTAssertTrue(run.stderr.contains("No space left on device"), run.stderr)
        let errorLines = run.stderr.split(separator: "\n").filter { $0.contains("error:") }
        XCTAssertEqual(errorLines.count, 1, run.stderr)
        let kept = stepFiles(out)
        XCTAssertEqual(kept.count, 1, "\(kept)")
        XCTAssertNoThrow(try Checkpoint.read(from: out + "/checkpoints/" + kept[0]))
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints").contains { $0.contains(".tmp-") },
                       "no temporary file is left behind")
    }
}
