import ArgumentParser
import Augment
import Audio
import Datasets
import Dist
import Foundation
import NN
import Train

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the ResNet on one rank or many (under mpirun or srun).",
        discussion: """
            Every rank trains on its share of each global batch (training.batch_size is the global batch); \
            gradients are summed across ranks while backward runs. Validation uses speaker-grouped folds \
            (round(1 / dataset.validation_size) of them, drawn by dataset.fold_seed; dataset.folds picks which \
            run; `digits-dist data --config` shows them), AudioMNIST's published splits \
            (dataset.validation_strategy: AudioMNISTSplits) or the speakers given with --val-speakers; a test set \
            (dataset.test_dataframe) is scored with each fold's final and best models. Rank 0 writes \
            RUN_DIR/config.yaml, folds.json, steps.jsonl, metrics.jsonl, summary.json and the models: \
            RUN_DIR/fold-K/final.ckpt (RUN_DIR/final.ckpt with --val-speakers).

            Examples:
              digits-dist train --config configs/demo.yaml --data demo-data --out runs/demo
              mpirun -n 8 digits-dist train --config configs/amnist.yaml
              digits-dist train --config configs/fsdd.yaml --val-speakers theo --set training.epochs=3
            """)

    @OptionGroup var configOptions: ConfigOptions

    @OptionGroup var dataOptions: RunDataOptions

    @Option(help: "Run folder (default: runs/<experiment_name>).")
    var out: String?

    @OptionGroup var compute: ComputeOptions

    @Option(help: "Start from torchvision ResNet weights in a safetensors file (architecture.width 64).")
    var pretrained: String?

    @Flag(help: "Split the ranks into one group per fold (MPI_Comm_split) and train the folds at the same time.")
    var foldParallel = false

    @Option(help: ArgumentHelp(
        "Continue from the newest checkpoint that verifies: of the run folder (--resume alone), of another run folder, or a checkpoint file.",
        valueName: "path"))
    var resume: String?

    func run() throws {
        StopSignal.install()
        try onEveryRank { world in try train(world: world) == .stopped ? StopSignal.exitCode : 0 }
    }

    func train(world: Communicator) throws -> RunCoordinator.Ending {
        var config = try configOptions.load(agreedBy: world)
        let runDirectory = resumeFolder ?? out ?? "runs/" + config.string("experiment_name")
        var seed = Int64(config.int("environment.seed"))
        if seed < 0, resume != nil, let saved = try? RunConfig.load(path: runDirectory + "/config.yaml") {
            seed = Int64(saved.int("environment.seed"))
        }
        if seed < 0 {
            seed = Int64(try world.broadcast(world.rank == 0 ? Int.random(in: 0...Int(Int32.max)) : 0))
            Log.info("environment.seed = -1: using seed \(seed) (saved in the run folder's config.yaml)")
        }
        config.set("environment.seed", to: .int(Int(seed)))
        var recipe = try TrainingRecipe(config: config, seed: UInt64(seed), pretrainedPath: pretrained)
        recipe.precision = try PrecisionPlan.agreed(config: config, world: world)
        let blasThreads = compute.blasThreads
        BLAS.setThreads(blasThreads)
        Log.info("\(world.size) rank\(world.size == 1 ? "" : "s") × \(blasThreads) BLAS thread\(blasThreads == 1 ? "" : "s") "
            + "(OpenBLAS \(BLAS.kernelFamily) kernels); "
            + "\(recipe.architecture.rawValue) width \(recipe.width), global batch \(recipe.globalBatch)"
            + (recipe.syncBatchNorm(ranks: world.size) ? ", synchronised BatchNorm (per-rank batch \(recipe.globalBatch / world.size))"
                : world.size > 1 ? ", per-rank BatchNorm statistics" : ""))
        if let warning = LogMelExtractor.emptyFilterWarning(settings: recipe.audio) { Log.info(warning) }

        let dataset = try config.loadDataset(path: dataOptions.data)
        // The noise folder first: a bad one fails in a line before the data's cache is built.
        recipe.crop.augmentation.recordedNoise = try ComputeOptions.recordedNoise(config: config, directory: compute.cacheDirectory,
                                                                                 world: world)
        let cache = try compute.openCache(dataset: dataset, settings: recipe.audio, workers: config.int("environment.number_of_workers"), world: world)
        let runs = try RunPlanner.runs(dataset: dataset, usable: { cache.frames(ofClip: $0) > 0 }, config: config,
                                       seed: UInt64(seed), validationSpeakers: dataOptions.validationSpeakers,
                                       log: Log.info)
        let testSet = try config.loadTestDataset().map { test in
            RunCoordinator.TestSet(dataset: test, cache: try compute.openCache(dataset: test, settings: recipe.audio,
                                                                                 workers: config.int("environment.number_of_workers"), world: world))
        }
        let coordinator = RunCoordinator(config: config, recipe: recipe, dataset: dataset, cache: cache, runs: runs,
                                         runDirectory: runDirectory, world: world, testSet: testSet)
        return try coordinator.run(resume: resume.map { $0 == Self.resumeHere ? "" : $0 }, foldParallel: foldParallel)
    }

    /// `--resume PATH` naming a run folder other than --out.
    var resumeFolder: String? {
        guard let resume, resume != Self.resumeHere else { return nil }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: resume, isDirectory: &isDirectory) && isDirectory.boolValue ? resume : nil
    }

    /// What `--resume` given without a path stands for (a value no path has).
    static let resumeHere = "\u{0}this-run-folder"
}
