@testable import Train
import Datasets
import Foundation
import XCTest

final class RunConfigTests: XCTestCase {
    let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func write(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/cfg-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// A checkpoint's saved config lists every key; one written before a key existed means the behaviour
    /// of that time: short clips at the start, features not normalised, folds by the training seed, plain
    /// BatchNorm (a model saved so must be rebuilt so to read its weights), no reverberation.
    func testASavedConfigWithoutTheNewerKeysMeansTheBehaviourBeforeThem() throws {
        let old = try RunConfig.parseSaved(yaml: "training:\n  epochs: 3\nenvironment:\n  seed: 7\n", source: "old.ckpt")
        XCTAssertEqual(old.inferencePlan.normalization, .no)
        XCTAssertEqual(old.inferencePlan.shortClipPosition, .start)
        XCTAssertEqual(old.int("dataset.fold_seed"), 7)
        XCTAssertEqual(old.int("architecture.subspectral_bands"), 1)
        XCTAssertEqual(old.double("augmentation.reverb_probability"), 0)
        var written = RunConfig()
        written.set("environment.seed", to: .int(7))
        let current = try RunConfig.parseSaved(yaml: written.yaml, source: "new.ckpt")
        XCTAssertEqual(current.inferencePlan.normalization, .perClip)
        XCTAssertEqual(current.inferencePlan.shortClipPosition, .center)
        XCTAssertEqual(current.int("dataset.fold_seed"), 0)
        XCTAssertEqual(current.int("architecture.subspectral_bands"), 4)
        XCTAssertEqual(current.double("augmentation.reverb_probability"), 0.5)
    }

    func testTheSeedConfigLoadsAsItIs() throws {
        let config = try RunConfig.load(path: repositoryRoot + "/configs/amnist.yaml")
        XCTAssertEqual(config.string("architecture.backbone"), "resnet50")
        XCTAssertEqual(config.string("audio.spectrogram_normalization"), "No")
        XCTAssertEqual(config.list("dataset.folds"), ["4"])
        XCTAssertEqual(config.list("training.differential_learning_rate_layers"), [])
        XCTAssertEqual(config.int("environment.seed"), -1)
        XCTAssertEqual(config.double("dataset.validation_size"), 0.2)
        XCTAssertEqual(config.path("dataset.train_dataframe"), repositoryRoot + "/configs/amnist_meta.csv")
        XCTAssertNil(config.path("dataset.test_dataframe"))
        let audio = config.audioSettings
        XCTAssertEqual([audio.sampleRate, audio.fftSize, audio.hopSize, audio.melBins], [22050, 2048, 512, 128])
        XCTAssertEqual(audio.maxFrequency, 16000)
    }

    func testOverridesAndTheResolvedConfigRoundTrips() throws {
        var config = try RunConfig.load(path: repositoryRoot + "/configs/amnist.yaml",
                                        overrides: ["training.epochs=3", "architecture.backbone=resnet18", "dataset.folds=[0, 2]"])
        XCTAssertEqual(config.int("training.epochs"), 3)
        XCTAssertEqual(config.string("architecture.backbone"), "resnet18")
        XCTAssertEqual(config.list("dataset.folds"), ["0", "2"])
        try config.apply(overrides: ["experiment_name=it's mine"])
        let reread = try RunConfig.load(path: try write(config.yaml))
        XCTAssertEqual(reread.values, config.values)
    }

    func testUnknownKeysNameTheClosestValidKey() throws {
        let path = try write("training:\n    batchsize: 16\n")
        XCTAssertThrowsError(try RunConfig.load(path: path)) {
            XCTAssertEqual("\($0)", "\(path): unknown key 'training.batchsize'; did you mean 'training.batch_size'?")
        }
        XCTAssertThrowsError(try RunConfig().loadOverride("trainig.epochs=3")) {
            XCTAssertEqual("\($0)", "--set: unknown key 'trainig.epochs'; did you mean 'training.epochs'?")
        }
        let section = try write("trainng:\n    epochs: 2\n")
        XCTAssertThrowsError(try RunConfig.load(path: section)) {
            XCTAssertTrue("\($0)".contains("unknown section 'trainng'; did you mean"), "\($0)")
        }
    }

    func testBadValuesNameKeyValueAndWhatIsAllowed() throws {
        let cases: [(String, String)] = [
            ("training.batch_size=0", "--set: training.batch_size = 0: expected a whole number in 1 or more"),
            ("architecture.backbone=resnet101", "--set: architecture.backbone = resnet101: expected one of resnet18, resnet34, resnet50"),
            ("training.learning_rate=-1", "--set: training.learning_rate = -1: expected a number in 1e-12...10.0"),
            ("training.learning_rate=.nan", "--set: training.learning_rate = .nan: expected a number in 1e-12...10.0"),
            ("training.drop_last_batch=maybe", "--set: training.drop_last_batch = maybe: expected true or false"),
            ("training.epochs", "--set training.epochs: expected key=value, e.g. training.epochs=3"),
        ]
        for (override, message) in cases {
            XCTAssertThrowsError(try RunConfig().loadOverride(override)) { XCTAssertEqual("\($0)", message) }
        }
    }

    func testEveryIgnoredKeySaysWhy() {
        for key in ConfigKey.all where key.ignoredBecause != nil {
            XCTAssertFalse(key.ignoredBecause!.isEmpty, key.name)
        }
        XCTAssertNotNil(ConfigKey.byName["environment.gpus"]?.ignoredBecause)
        XCTAssertNil(ConfigKey.byName["training.batch_size"]?.ignoredBecause)
    }
}

extension RunConfig {
    func loadOverride(_ override: String) throws {
        var copy = self
        try copy.apply(overrides: [override])
    }
}

final class TrainingKeysTests: XCTestCase {
    func testDifferentialLayersNameModelParts() throws {
        XCTAssertTrue(try Trainer.isDifferential("layer2.0.conv1.weight", layers: ["backbone"]))
        XCTAssertFalse(try Trainer.isDifferential("fc.weight", layers: ["backbone"]))
        XCTAssertTrue(try Trainer.isDifferential("fc.bias", layers: ["head"]))
        XCTAssertTrue(try Trainer.isDifferential("bn1.weight", layers: ["bn1", "layer4"]))
        XCTAssertFalse(try Trainer.isDifferential("layer3.1.bn2.bias", layers: ["layer4"]))
        XCTAssertThrowsError(try Trainer.isDifferential("fc.bias", layers: ["neck"])) {
            XCTAssertTrue("\($0)".hasPrefix("training.differential_learning_rate_layers: 'neck' is not a model part"), "\($0)")
        }
    }

    /// A dataset in memory: one clip of each digit per speaker.
    func tenClips(each speakers: some Collection<String>) -> Dataset {
        Dataset(root: "mem", layout: .fsdd, clips: speakers.flatMap { s in (0..<10).map { Clip(path: "\(s)/\($0)", label: $0, speaker: s) } })
    }

    func testTrainValidationDataAddsTheValidationFoldToTraining() throws {
        let dataset = tenClips(each: (0..<4).map { "s\($0)" })
        var config = RunConfig()
        try config.apply(overrides: ["dataset.validation_size=0.5", "dataset.folds=[all]"])
        let plain = try RunPlanner.runs(dataset: dataset, usable: { _ in true }, config: config, seed: 1, validationSpeakers: nil) { _ in }
        XCTAssertEqual(plain.map { $0.trainingClips.count }, [20, 20])
        try config.apply(overrides: ["training.train_validation_data=true"])
        let both = try RunPlanner.runs(dataset: dataset, usable: { _ in true }, config: config, seed: 1, validationSpeakers: nil) { _ in }
        XCTAssertEqual(both.map { $0.trainingClips.count }, [40, 40])
        XCTAssertEqual(both.map { $0.validationClips }, plain.map { $0.validationClips })
    }

    /// Folds follow the dataset and dataset.fold_seed, never the training seed: runs of any seed compare
    /// on the same speakers.
    func testFoldsDependOnTheFoldSeedAloneNotOnTheTrainingSeed() throws {
        let dataset = tenClips(each: (0..<12).map { "s\($0)" })
        var config = RunConfig()
        try config.apply(overrides: ["dataset.validation_size=0.25", "dataset.folds=[all]"])
        func speakers(seed: UInt64) throws -> [[String]] {
            try RunPlanner.runs(dataset: dataset, usable: { _ in true }, config: config, seed: seed, validationSpeakers: nil) { _ in }
                .map(\.validationSpeakers)
        }
        let first = try speakers(seed: 1)
        for seed: UInt64 in [2, 3, 99, 123_456] { XCTAssertEqual(try speakers(seed: seed), first, "training seed \(seed)") }
        let others = try (1...5).map { foldSeed in
            try config.apply(overrides: ["dataset.fold_seed=\(foldSeed)"])
            return try speakers(seed: 1)
        }
        XCTAssertTrue(others.contains { $0 != first }, "another fold seed draws other folds")
    }

    /// AudioMNIST's published splits: 36/12/12 speakers, each speaker validated once and tested once.
    func testAudioMNISTSplitsAreThePublishedOnesAsFolds() throws {
        let all = Set(AudioMNISTSplits.speakers)
        for split in AudioMNISTSplits.splits {
            XCTAssertEqual([split.training.count, split.validation.count, split.test.count], [36, 12, 12])
            XCTAssertEqual(Set(split.training + split.validation + split.test), all)
        }
        XCTAssertEqual(Set(AudioMNISTSplits.splits.flatMap(\.test)), all)
        XCTAssertEqual(Set(AudioMNISTSplits.splits.flatMap(\.validation)), all)
        // splits.py, "digit", split 0: validate {12, 47, 59, 15, 27, 41, 4, 11, 21, 31, 44, 50}, test {26, 52, 60, …}.
        XCTAssertEqual(AudioMNISTSplits.splits[0].validation, ["04", "11", "12", "15", "21", "27", "31", "41", "44", "47", "50", "59"])
        XCTAssertEqual(AudioMNISTSplits.splits[0].test, ["05", "13", "18", "22", "26", "32", "33", "42", "45", "51", "52", "60"])

        let all60 = tenClips(each: AudioMNISTSplits.speakers), all59 = tenClips(each: AudioMNISTSplits.speakers.dropLast())
        var config = RunConfig()
        try config.apply(overrides: ["dataset.validation_strategy=AudioMNISTSplits", "dataset.folds=[all]"])
        let runs = try RunPlanner.runs(dataset: all60, usable: { _ in true },
                                       config: config, seed: 1, validationSpeakers: nil) { _ in }
        XCTAssertEqual(runs.map { [$0.trainingClips.count, $0.validationClips.count, $0.testClips.count] }, Array(repeating: [360, 120, 120], count: 5))
        XCTAssertEqual(runs.map(\.testSpeakers), AudioMNISTSplits.splits.map(\.test))
        XCTAssertThrowsError(try RunPlanner.runs(dataset: all59,
                                                 usable: { _ in true }, config: config, seed: 1, validationSpeakers: nil) { _ in }) {
            XCTAssertTrue("\($0)".contains("needs AudioMNIST's speakers 01-60; the dataset lacks 1 of them (60"), "\($0)")
        }
        try config.apply(overrides: ["dataset.test_dataframe=/elsewhere/test.csv"])
        XCTAssertThrowsError(try RunPlanner.runs(dataset: all60, usable: { _ in true },
                                                 config: config, seed: 1, validationSpeakers: nil) { _ in }) {
            XCTAssertTrue("\($0)".contains("unset dataset.test_dataframe"), "\($0)")
        }
    }

    func testCSVColumnsComeFromTheConfig() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/columns-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "file,digit\n3_ann_0.wav,3\n".write(toFile: folder + "/m.csv", atomically: true, encoding: .utf8)
        var config = RunConfig()
        try config.apply(overrides: ["dataset.audio_column=file", "dataset.label_columns=[digit]"])
        let dataset = try config.loadDataset(path: folder + "/m.csv")
        XCTAssertEqual(dataset.clips, [Clip(path: folder + "/3_ann_0.wav", label: 3, speaker: "ann")])
    }
}
