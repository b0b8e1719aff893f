import ArgumentParser
import Audio
import Augment
import Datasets
import Dist
import Foundation
import NN
import Train

/// `--threads`, shared by every command that runs the network (train, evaluate, bench train).
struct ThreadOptions: ParsableArguments {
    @Option(help: "BLAS threads per rank (default: the node's cores divided by the ranks on it).")
    var threads: Int?

    var blasThreads: Int { threads.map { max(1, $0) } ?? Self.coresPerRank }

    /// The node's cores shared among the ranks on it (mpirun and srun tell each rank how many share the node).
    private static var coresPerRank: Int {
        let local = Launcher(environment: ProcessInfo.processInfo.environment).localSize
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local))
    }
}

/// `--cache-dir` and `--threads`, shared by the commands that compute on a dataset (train, evaluate).
struct ComputeOptions: ParsableArguments {
    @Option(help: "Folder of the feature cache (default: $DIGITS_DIST_CACHE or ~/.cache/digits-dist).")
    var cacheDir: String?

    @OptionGroup var threading: ThreadOptions

    var blasThreads: Int { threading.blasThreads }

    var cacheDirectory: String { cacheDir ?? Self.defaultCacheDirectory }

    static var defaultCacheDirectory: String {
        ProcessInfo.processInfo.environment["DIGITS_DIST_CACHE"]
            ?? FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/digits-dist"
    }

    /// The dataset's feature cache in `--cache-dir`, built if needed (`openCache(dataset:settings:directory:workers:world:)`).
    func openCache(dataset: Dataset, settings: AudioSettings, workers: Int, world: Communicator) throws -> FeatureCache {
        try Self.openCache(dataset: dataset, settings: settings, directory: cacheDirectory, workers: workers, world: world)
    }

    /// The dataset's feature cache, built if needed: on all cores of one process (`workers` threads,
    /// 0 = all), or by every rank under mpirun; then every rank maps the same file.
    static func openCache(dataset: Dataset, settings: AudioSettings, directory: String, workers: Int,
                          world: Communicator) throws -> FeatureCache {
        let cache = world.size > 1
            ? try DistributedFeatureCache.open(dataset: dataset, settings: settings, directory: directory, world: world, log: Log.info)
            : try FeatureCache.open(dataset: dataset, settings: settings, directory: directory,
                                    threads: workers > 0 ? workers : ProcessInfo.processInfo.activeProcessorCount, log: Log.info)
        for file in dataset.skipped.prefix(10) { Log.info("skipped \(file)") }
        if dataset.skipped.count > 10 { Log.info("… and \(dataset.skipped.count - 10) more skipped files (`digits-dist data` lists all)") }
        let skipped = cache.skipped.sorted { $0.key < $1.key }
        for (i, reason) in skipped.prefix(10) { Log.info("skipped clip \(i): \(reason)") }
        if skipped.count > 10 { Log.info("… and \(skipped.count - 10) more skipped clips (`digits-dist cache --data … --list-skipped` lists all)") }
        guard skipped.count < cache.clipCount else {
            throw DatasetError(path: dataset.root, problem: "none of its \(cache.clipCount) clips is usable (the first: \(skipped.first?.value ?? "?"))")
        }
        return cache
    }

    /// `augmentation.noise_folder`'s recordings as training noise (nil without the key): found, decoded and
    /// cached as the data is (`openCache`: every rank under mpirun), and logged.
    static func recordedNoise(config: RunConfig, directory: String, world: Communicator) throws -> RecordedNoise? {
        guard let folder = config.path("augmentation.noise_folder") else { return nil }
        let recordings = try Dataset.loadRecordings(folder: folder)
        let settings = config.audioSettings
        let noise = try RecordedNoise(cache: openCache(dataset: recordings, settings: settings, directory: directory,
                                                       workers: config.int("environment.number_of_workers"), world: world))
        Log.info(String(format: "augmentation.noise_folder: %d noise recordings (%.0f s) from %@", noise.usable.count,
                        noise.seconds(hopSeconds: settings.hopSeconds), recordings.root))
        return noise
    }
}
