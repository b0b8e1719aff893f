import ArgumentParser
import Datasets

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Show a dataset and its speaker-grouped folds.",
        discussion: """
            Detects the layout (AudioMNIST NN/{digit}_NN_{i}.wav folders, FSDD {digit}_{speaker}_{i}.wav \
            files, or a CSV with audio,label[,speaker]) and prints, per fold, its speakers, clip count and \
            clips per digit. No speaker is in two folds; folds are balanced in clips; the same seed gives the same folds.

            Examples:
              digits-dist data --data ../shared/data/fsdd/recordings --folds 5
              digits-dist data --data AudioMNIST/data --folds 5 --seed 7
              digits-dist data --data configs/demo_meta.csv --folds 3
            """)

    @Option(help: "Dataset folder or CSV file.")
    var data: String

    @Option(help: "Number of speaker-grouped folds.")
    var folds: Int = 5

    @Option(help: "Seed of the fold assignment.")
    var seed: UInt64 = 0

    func run() throws {
        try failing {
            let dataset = try Dataset.load(path: data)
            let plan = try SpeakerFolds(dataset: dataset, folds: folds, seed: seed)
            print("dataset: \(dataset.root) (\(dataset.layout.rawValue)): \(dataset.clips.count) clips, \(dataset.speakers.count) speakers")
            print("digits:  " + dataset.labelCounts.map { String(format: "%5d", $0) }.joined())
            for fold in 0..<plan.count {
                let indices = plan.clipIndices[fold]
                var counts = [Int](repeating: 0, count: 10)
                for i in indices { counts[dataset.clips[i].label] += 1 }
                print("fold \(fold): \(indices.count) clips, speakers \(plan.speakers[fold].joined(separator: ","))")
                print("  digits " + counts.map { String(format: "%5d", $0) }.joined())
            }
            if !dataset.skipped.isEmpty {
                print("skipped \(dataset.skipped.count) files:")
                for file in dataset.skipped { print("  \(file)") }
            }
            let unreadable = dataset.unreadableClips
            if !unreadable.isEmpty {
                print("\(unreadable.count) clips name no readable file (the cache build skips them):")
                for file in unreadable { print("  \(file)") }
            }
        }
    }
}
