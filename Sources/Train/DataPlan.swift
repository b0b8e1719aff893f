import Datasets
import Foundation

/// The clips one training run learns from and is validated on.
public struct FoldRun: Sendable {
    /// Index in the speaker-fold plan, or nil for a run validated on speakers named on the command line.
    public var fold: Int?
    public var validationSpeakers: [String]
    public var trainingClips: [Int]
    public var validationClips: [Int]
    /// Speakers held out for testing, scored with the fold's final and best models (AudioMNIST's splits).
    public var testSpeakers: [String] = []
    public var testClips: [Int] = []

    /// Where this run writes its checkpoints: the run folder itself, or `fold-K` inside it.
    public func directory(in runDirectory: String) -> String {
        fold.map { "\(runDirectory)/fold-\($0)" } ?? runDirectory
    }
}

/// Turns the config's dataset keys into runs: speaker-grouped folds (round(1 / validation_size) of
/// them, assigned by `dataset.fold_seed`), the folds `dataset.folds` selects ('all' for every one), or one
/// run on named speakers. `seed` (the training seed) draws only `dataset.data_sample`'s subsets.
public enum RunPlanner {
    public static func runs(dataset: Dataset, usable: (Int) -> Bool, config: RunConfig, seed: UInt64,
                            validationSpeakers named: [String]?, log: (String) -> Void) throws -> [FoldRun] {
        let sample = config.double("dataset.data_sample")
        // training.train_validation_data: the final model also learns from the fold it is validated on.
        let trainsOnValidation = config.bool("training.train_validation_data")
        let sampleChoice = Set(config.list("dataset.data_sample_choice").map { $0.lowercased() })
        func sampled(_ clips: [Int], _ split: String, salt: UInt64) -> [Int] {
            let kept = clips.filter(usable)
            guard sample < 1, sampleChoice.contains(split) else { return kept }
            var shuffled = kept
            var rng = SplitMix64(seed: seed ^ salt)
            rng.shuffle(&shuffled)
            return Array(shuffled.prefix(max(1, Int((Double(kept.count) * sample).rounded(.up))))).sorted()
        }
        if let named {
            let known = Set(dataset.speakers)
            for speaker in named where !known.contains(speaker) {
                throw ConfigError("--val-speakers: speaker '\(speaker)' is not in the dataset (\(dataset.speakers.joined(separator: ", ")))")
            }
            let validation = Set(named)
            let indices = Array(dataset.clips.indices)
            return [FoldRun(fold: nil, validationSpeakers: named.sorted(),
                            trainingClips: sampled(indices.filter { trainsOnValidation || !validation.contains(dataset.clips[$0].speaker) }, "train", salt: 1),
                            validationClips: sampled(indices.filter { validation.contains(dataset.clips[$0].speaker) }, "validation", salt: 2))]
        }
        if config.string("dataset.validation_strategy") == "AudioMNISTSplits" {
            return try audioMNISTSplits(dataset: dataset, usable: usable, config: config, trainsOnValidation: trainsOnValidation,
                                        sampled: sampled)
        }
        let grouping = config.string("dataset.group_fold_column")
        if config.explicitKeys.contains("dataset.group_fold_column") && grouping != "speaker" {
            log("dataset.group_fold_column = \(grouping): folds group by speaker instead, so no speaker is on both sides of a split")
        }
        var foldCount = Int((1 / config.double("dataset.validation_size")).rounded())
        let speakers = dataset.speakers.count - dataset.trainingOnlySpeakers.count
        if foldCount > speakers {
            log("dataset.validation_size asks for \(foldCount) folds; the dataset has \(speakers) speakers, so \(speakers) folds")
            foldCount = speakers
        }
        let plan = try SpeakerFolds(dataset: dataset, folds: max(2, foldCount), seed: UInt64(config.int("dataset.fold_seed")))
        let selected = try selectedFolds(config.list("dataset.folds"), count: plan.count)
        return selected.map { fold in
            FoldRun(fold: fold, validationSpeakers: plan.speakers[fold],
                    trainingClips: sampled(trainsOnValidation ? Array(dataset.clips.indices) : plan.trainingIndices(excluding: fold),
                                           "train", salt: 1),
                    validationClips: sampled(plan.clipIndices[fold], "validation", salt: 2))
        }
    }

    /// The published AudioMNIST splits as folds: fold k trains on split k's 36 speakers (and any training-only
    /// speakers), validates on its 12 and tests on its other 12.
    static func audioMNISTSplits(dataset: Dataset, usable: (Int) -> Bool, config: RunConfig, trainsOnValidation: Bool,
                                 sampled: ([Int], String, UInt64) -> [Int]) throws -> [FoldRun] {
        guard !config.namesTestSet else {
            throw ConfigError("dataset.validation_strategy = AudioMNISTSplits tests each fold on its own 12 speakers: "
                + "unset dataset.test_dataframe and dataset.data_folder_test")
        }
        let missing = Set(AudioMNISTSplits.speakers).subtracting(dataset.speakers)
        guard missing.isEmpty else {
            throw ConfigError("dataset.validation_strategy = AudioMNISTSplits needs AudioMNIST's speakers 01-60; "
                + "the dataset lacks \(missing.count) of them (\(missing.sorted().prefix(5).joined(separator: ", "))…)")
        }
        let indices = Array(dataset.clips.indices)
        func clips(of speakers: [String]) -> [Int] {
            let set = Set(speakers)
            return indices.filter { set.contains(dataset.clips[$0].speaker) }
        }
        let selected = try selectedFolds(config.list("dataset.folds"), count: AudioMNISTSplits.splits.count)
        return selected.map { fold in
            let split = AudioMNISTSplits.splits[fold]
            let training = split.training + dataset.trainingOnlySpeakers.sorted() + (trainsOnValidation ? split.validation : [])
            var run = FoldRun(fold: fold, validationSpeakers: split.validation,
                              trainingClips: sampled(clips(of: training), "train", 1),
                              validationClips: sampled(clips(of: split.validation), "validation", 2))
            run.testSpeakers = split.test
            run.testClips = clips(of: split.test).filter(usable)
            return run
        }
    }

    static func selectedFolds(_ names: [String], count: Int) throws -> [Int] {
        if names.isEmpty || names.contains(where: { $0.lowercased() == "all" }) { return Array(0..<count) }
        return try names.map { name in
            guard let fold = Int(name), (0..<count).contains(fold) else {
                throw ConfigError("dataset.folds = [\(names.joined(separator: ", "))]: fold '\(name)' does not exist (0...\(count - 1), or 'all')")
            }
            return fold
        }.reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
    }
}

/// One epoch's global order of training clips, cut into global batches of a fixed size.
///
/// The order depends only on the seed and the epoch, and each global batch is split between ranks by
/// position, so the same global batches are formed on any number of ranks: a run's result does not
/// depend on how many ranks computed it (beyond float rounding), and a resumed run continues exactly.
public struct EpochOrder: Sendable {
    public let clips: [Int]
    public let globalBatch: Int
    public let batchCount: Int
    public let epoch: Int

    public init(trainingClips: [Int], globalBatch: Int, dropLast: Bool, seed: UInt64, epoch: Int) {
        var order = trainingClips
        var rng = SplitMix64(seed: seed ^ (0x5EED_0000_0000 &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
        rng.shuffle(&order)
        clips = order
        self.epoch = epoch
        self.globalBatch = globalBatch
        batchCount = dropLast ? order.count / globalBatch : (order.count + globalBatch - 1) / globalBatch
    }

    /// Positions (into `clips`) of global batch `b`.
    public func batch(_ b: Int) -> Range<Int> {
        (b * globalBatch)..<min(clips.count, (b + 1) * globalBatch)
    }

    /// This rank's share of `count` items: `count / ranks` each, the first `count % ranks` ranks one more.
    public static func shard(_ range: Range<Int>, rank: Int, ranks: Int) -> Range<Int> {
        let base = range.count / ranks, extra = range.count % ranks
        let start = range.lowerBound + rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// The random crop start of the clip at `position` in this epoch: a pure function of seed, epoch and
    /// position, so no generator state has to travel between ranks or into checkpoints.
    public static func cropStart(seed: UInt64, epoch: Int, position: Int, clipFrames: Int, cropFrames: Int) -> Int {
        guard clipFrames > cropFrames else { return 0 }
        var rng = SplitMix64(seed: seed ^ (UInt64(epoch) << 40) ^ (UInt64(position) &* 0xD6E8_FEB8_6659_FD93))
        return rng.nextInt(below: clipFrames - cropFrames + 1)
    }
}
