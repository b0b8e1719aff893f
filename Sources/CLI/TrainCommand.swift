import ArgumentParser
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
            (round(1 / dataset.validation_size) of them; dataset.folds picks which run) or the speakers \
            given with --val-speakers. Rank 0 writes RUN_DIR/config.yaml, steps.jsonl, metrics.jsonl, \
            summary.json and the models: RUN_DIR/fold-K/final.ckpt (RUN_DIR/final.ckpt with --val-speakers).

            Examples:
              digits-dist train --config configs/demo.yaml --data demo-data --out runs/demo
              mpirun -n 8 digits-dist train --config configs/amnist.yaml
              digits-dist train --config configs/fsdd.yaml --val-speakers theo --set training.epochs=3
            """)

    @OptionGroup var configOptions: ConfigOptions

    @Option(help: "Dataset folder or CSV (default: the config's dataset.train_dataframe / data_folder).")
    var data: String?

    @Option(help: "Run folder (default: runs/<experiment_name>).")
    var out: String?

    @Option(help: "Validate on these speakers (comma-separated) instead of the fold plan.")
    var valSpeakers: String?

    @OptionGroup var compute: ComputeOptions

    @Option(help: ArgumentHelp(
        "Continue from the newest checkpoint that verifies: of the run folder (--resume alone), of another run folder, or a checkpoint file.",
        valueName: "path"))
    var resume: String?

    func run() throws {
        try Communicator.initialize()
        let world = Communicator.world
        Log.rank = world.rank
        StopSignal.install()
        do {
            if try train(world: world) == .stopped {
                try Communicator.finalize()
                throw ExitCode(StopSignal.exitCode)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Log.error("\(error)")
            if world.size > 1 { world.abort(code: 1) }
            try? Communicator.finalize()
            throw ExitCode.failure
        }
        try Communicator.finalize()
    }

    enum Ending { case finished, stopped }

    func train(world: Communicator) throws -> Ending {
        let started = Date()
        var config = try configOptions.load()
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
        let recipe = try TrainingRecipe(config: config, seed: UInt64(seed))
        let blasThreads = compute.blasThreads
        BLAS.setThreads(blasThreads)
        Log.info("\(world.size) rank\(world.size == 1 ? "" : "s") × \(blasThreads) BLAS thread\(blasThreads == 1 ? "" : "s"); "
            + "\(recipe.architecture.rawValue) width \(recipe.width), global batch \(recipe.globalBatch)"
            + (recipe.syncBatchNorm(ranks: world.size) ? ", synchronised BatchNorm (per-rank batch \(recipe.globalBatch / world.size))"
                : world.size > 1 ? ", per-rank BatchNorm statistics" : ""))
        if let warning = LogMelExtractor.emptyFilterWarning(settings: recipe.audio) { Log.info(warning) }

        let dataset = try loadDataset(config: config)
        let cache = try compute.openCache(dataset: dataset, settings: recipe.audio, workers: config.int("environment.number_of_workers"), world: world)
        let runs = try RunPlanner.runs(dataset: dataset, usable: { cache.frames(ofClip: $0) > 0 }, config: config,
                                       seed: UInt64(seed), validationSpeakers: valSpeakers?.split(separator: ",").map(String.init),
                                       log: Log.info)
        var outputs: RunOutputs?
        if world.rank == 0 {
            outputs = try RunOutputs(directory: runDirectory)
            try config.yaml.write(toFile: runDirectory + "/config.yaml", atomically: true, encoding: .utf8)
        }
        let datasetKey = String(cache.key, radix: 16)
        var summaries: [RunOutputs.FoldSummary] = []
        for run in runs {
            let store = CheckpointStore(directory: run.directory(in: runDirectory), keep: recipe.keepCheckpoints)
            let start = resume == nil ? .fresh : try agreedStart(store: store, fold: run.fold, world: world)
            var resumeFrom: Checkpoint?
            switch start {
            case .fresh:
                break
            case .done(let path):
                let final = try Checkpoint.read(from: path)
                try ResumeCheck.verify(checkpoint: final, path: path, config: config, datasetKey: datasetKey)
                Log.info("\(run.fold.map { "fold \($0)" } ?? "run") already finished (\(path))")
                summaries.append(.init(fold: run.fold, validation_speakers: run.validationSpeakers, checkpoint: path,
                                       metrics: final.metadata.metrics))
                continue
            case .from(let path):
                let checkpoint = try Checkpoint.read(from: path)
                try ResumeCheck.verify(checkpoint: checkpoint, path: path, config: config, datasetKey: datasetKey)
                try outputs?.forget(fold: run.fold, after: checkpoint.metadata.step)
                resumeFrom = checkpoint
            }
            let trainer = try Trainer(recipe: recipe, run: run, dataset: dataset, cache: cache, communicator: world,
                                      outputs: outputs, configYAML: config.yaml)
            guard case .finished(let metrics) = try trainer.train(store: world.rank == 0 ? store : nil, resume: resumeFrom) else {
                return .stopped
            }
            if world.rank == 0 {
                try trainer.checkpoint().write(to: store.finalPath)
                summaries.append(.init(fold: run.fold, validation_speakers: run.validationSpeakers,
                                       checkpoint: store.finalPath, metrics: metrics))
            }
            try world.barrier()
        }
        if let outputs {
            let summary = try outputs.writeSummary(experiment: config.string("experiment_name"), ranks: world.size,
                                                   folds: summaries, seconds: Date().timeIntervalSince(started))
            if let mean = summary.accuracy_mean, let std = summary.accuracy_std {
                Log.info(String(format: "done in %.0f s: validation accuracy %.4f ± %.4f over %d run%@; summary in %@/summary.json",
                                summary.seconds, mean, std, summaries.count, summaries.count == 1 ? "" : "s", runDirectory))
            }
        }
        return .finished
    }

    /// `--resume PATH` naming a run folder other than --out.
    var resumeFolder: String? {
        guard let resume, resume != Self.resumeHere else { return nil }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: resume, isDirectory: &isDirectory) && isDirectory.boolValue ? resume : nil
    }

    /// What `--resume` given without a path stands for.
    static let resumeHere = "."

    enum Start { case fresh, done(String), from(String) }

    /// Rank 0 picks where a fold starts (finished, a checkpoint, or afresh) and tells the others, so
    /// every rank loads the same file even if one is written meanwhile.
    func agreedStart(store: CheckpointStore, fold: Int?, world: Communicator) throws -> Start {
        var choice = [UInt8]()
        if world.rank == 0 {
            if let resume, resume.hasSuffix(".ckpt"), try Checkpoint.read(from: resume).metadata.fold == fold {
                choice = Array(("from:" + resume).utf8)
            } else if (try? Checkpoint.read(from: store.finalPath)) != nil {
                choice = Array(("done:" + store.finalPath).utf8)
            } else if let path = store.newestValid(log: Log.info) {
                choice = Array(("from:" + path).utf8)
            }
        }
        try world.broadcast(&choice)
        let text = String(decoding: choice, as: UTF8.self)
        if text.hasPrefix("done:") { return .done(String(text.dropFirst(5))) }
        if text.hasPrefix("from:") { return .from(String(text.dropFirst(5))) }
        return .fresh
    }

    func loadDataset(config: RunConfig) throws -> Dataset {
        if let data { return try Dataset.load(path: data) }
        if let csv = config.path("dataset.train_dataframe") {
            return try Dataset.load(path: csv, dataFolder: config.path("dataset.data_folder"))
        }
        if let folder = config.path("dataset.data_folder") { return try Dataset.load(path: folder) }
        throw ValidationError("no data: pass --data PATH or set dataset.train_dataframe / dataset.data_folder in the config")
    }

}
