import ArgumentParser
import Audio
import Datasets
import Dist
import Foundation
import NN
import Train

/// `--cache-dir` and `--threads`, shared by the commands that compute on a dataset (train, evaluate).
struct ComputeOptions: ParsableArguments {
    @Option(help: "Folder of the feature cache (default: $DIGITS_DIST_CACHE or ~/.cache/digits-dist).")
    var cacheDir: String?

    @Option(help: "BLAS threads per rank (default: the node's cores divided by the ranks on it).")
    var threads: Int?

    /// The node's cores shared among the ranks on it (Open MPI and Slurm tell each rank how many share the node).
    var blasThreads: Int {
        if let threads { return max(1, threads) }
        let environment = ProcessInfo.processInfo.environment
        let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init)
            ?? environment["SLURM_NTASKS_PER_NODE"].flatMap(Int.init) ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local))
    }

    var cacheDirectory: String {
        cacheDir ?? ProcessInfo.processInfo.environment["DIGITS_DIST_CACHE"]
            ?? FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/digits-dist"
    }

    /// Rank 0 builds the cache if needed (on `workers` threads, 0 = all cores) while the others wait;
    /// then every rank maps the same file.
    func openCache(dataset: Dataset, settings: AudioSettings, workers: Int, world: Communicator) throws -> FeatureCache {
        let threads = workers > 0 ? workers : ProcessInfo.processInfo.activeProcessorCount
        var cache: FeatureCache?
        var failure: Error?
        if world.rank == 0 {
            do {
                cache = try FeatureCache.open(dataset: dataset, settings: settings, directory: cacheDirectory,
                                              threads: threads, log: Log.info)
                for (i, reason) in cache!.skipped.sorted(by: { $0.key < $1.key }) { Log.info("skipped clip \(i): \(reason)") }
            } catch {
                failure = error
            }
        }
        let failed = try world.broadcast(failure == nil ? 0 : 1)
        if let failure { throw failure }
        guard failed == 0 else { throw TrainingError("rank 0 could not build the feature cache") }
        return try cache ?? FeatureCache.open(dataset: dataset, settings: settings, directory: cacheDirectory, threads: 1)
    }
}
