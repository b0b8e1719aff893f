import ArgumentParser
import Datasets
import Dist
import Foundation
import Train

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Build (or check) a dataset's feature cache ahead of training.",
        discussion: """
            Computes the log-mel features of every clip once into one checksummed, memory-mapped file, as \
            `train` would on its first run; under mpirun every rank computes a share. Lists the clips that \
            could not be used. Useful on a login node or in a job step before the training job.

            Examples:
              digits-dist cache --data data/AudioMNIST/data --config configs/amnist.yaml
              mpirun -n 8 digits-dist cache --data data/AudioMNIST/data --cache-dir /shared/cache
            """)

    @Option(help: "Dataset folder or CSV (default: the config's dataset.train_dataframe / data_folder).")
    var data: String?

    @Flag(help: "Print every clip that could not be used, one per line.")
    var listSkipped = false

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try onEveryRank { world in
            let config = try configOptions.load(agreedBy: world)
            let settings = config.audioSettings
            try settings.validate()
            let dataset = try config.loadDataset(path: data)
            let cache = try compute.openCache(dataset: dataset, settings: settings,
                                              workers: config.int("environment.number_of_workers"), world: world)
            if world.rank == 0 {
                print("\(cache.path): \(cache.clipCount - cache.skipped.count) clips of \(dataset.clips.count) usable, "
                    + "\(cache.skipped.count) skipped")
                if listSkipped {
                    for (i, reason) in cache.skipped.sorted(by: { $0.key < $1.key }) { print("skipped \(i): \(reason)") }
                }
            }
            return 0
        }
    }
}
