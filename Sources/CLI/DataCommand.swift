import ArgumentParser
import Datasets
import Train

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Show a dataset and the speaker-grouped folds training will run on it.",
        discussion: """
            Detects the layout (AudioMNIST NN/{digit}_NN_{i}.wav folders, FSDD {digit}_{speaker}_{i}.wav \
            files, or a CSV with audio,label[,speaker]) and prints, per fold, its validation speakers, clip \
            counts and clips per digit. No speaker is in two folds; folds are balanced in clips. Folds depend \
            on the dataset and dataset.fold_seed alone (not on environment.seed), so with --config (and the \
            same --data, --set and --val-speakers) these are exactly the folds `train` runs; `train` also writes \
            them to its run folder's folds.json. Without --config or --set: every one of --folds folds (default 5).

            Examples:
              digits-dist data --data ../shared/data/fsdd/recordings --folds 5
              digits-dist data --config configs/amnist.yaml
              digits-dist data --data AudioMNIST/data --folds 5 --seed 7
              digits-dist data --data configs/demo_meta.csv --folds 3
            """)

    @OptionGroup var configOptions: ConfigOptions

    @OptionGroup var dataOptions: RunDataOptions

    @Option(help: "Number of speaker-grouped folds, all shown (default without --config or --set: 5; else the config's).")
    var folds: Int?

    @Option(help: "Seed of the fold assignment (dataset.fold_seed).")
    var seed: Int?

    func run() throws {
        try failing {
            var config = try configOptions.load()
            let plainDataset = configOptions.config == nil && configOptions.overrides.isEmpty
            if let count = folds ?? (plainDataset ? 5 : nil) {
                guard count >= 2 else { throw ValidationError("--folds \(count): at least 2") }
                config.set("dataset.validation_size", to: .double(1 / Double(count)))
                config.set("dataset.folds", to: .list(["all"]))
            }
            if let seed { config.set("dataset.fold_seed", to: .int(seed)) }
            let dataset = try config.loadDataset(path: dataOptions.data)
            let unreadable = dataset.unreadableClips
            let unreadablePaths = Set(unreadable.map(\.path))
            let trainingSeed = config.int("environment.seed")
            let runs = try RunPlanner.runs(
                dataset: dataset, usable: { !unreadablePaths.contains(dataset.clips[$0].path) }, config: config,
                seed: UInt64(max(0, trainingSeed)), validationSpeakers: dataOptions.validationSpeakers,
                log: { print("note: " + $0) })
            print("dataset: \(dataset.root) (\(dataset.layout.rawValue)): \(dataset.clips.count) clips, \(dataset.speakers.count) speakers")
            print("digits:  " + dataset.labelCounts.map { String(format: "%5d", $0) }.joined())
            for run in runs {
                print("\(run.fold.map { "fold \($0)" } ?? "run"): \(run.validationClips.count) clips, speakers "
                    + "\(run.validationSpeakers.joined(separator: ",")); trains on \(run.trainingClips.count) clips")
                print("  digits " + dataset.labelCounts(of: run.validationClips).map { String(format: "%5d", $0) }.joined())
                if !run.testSpeakers.isEmpty {
                    print("  tests on \(run.testClips.count) clips, speakers \(run.testSpeakers.joined(separator: ","))")
                }
            }
            if config.double("dataset.data_sample") < 1 && trainingSeed < 0 {
                print("note: dataset.data_sample draws its subsets with environment.seed, which is -1 (drawn by train): counts vary")
            }
            if !dataset.skipped.isEmpty {
                print("skipped \(dataset.skipped.count) files:")
                for file in dataset.skipped { print("  \(file)") }
            }
            if !unreadable.isEmpty {
                print("\(unreadable.count) clips name no readable file (the cache build skips them):")
                for file in unreadable { print("  \(file)") }
            }
        }
    }
}
