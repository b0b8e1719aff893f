import Datasets
import Dist
import Foundation
import NN

/// Runs the folds of a training run on the ranks of `world`: one after another on all ranks, or with
/// `foldParallel` on groups of ranks (MPI_Comm_split), each training its share of the folds at the same
/// time. World rank 0 decides where each fold starts (fresh, from a checkpoint, or already finished),
/// so every rank loads the same files, and writes the run's summary at the end.
public final class RunCoordinator {
    public enum Ending: Equatable { case finished, stopped }

    let config: RunConfig
    let recipe: TrainingRecipe
    let dataset: Dataset
    let cache: FeatureCache
    let runs: [FoldRun]
    let runDirectory: String
    let world: Communicator
    let datasetKey: String
    let testSet: TestSet?

    /// Clips held out for testing and the cache holding their features: a test set (`dataset.test_dataframe`
    /// / `data_folder_test`, every usable clip) or a fold's own test speakers (AudioMNIST's splits).
    public struct TestSet {
        public var dataset: Dataset
        public var cache: FeatureCache
        public var clips: [Int]
        public init(dataset: Dataset, cache: FeatureCache, clips: [Int]? = nil) {
            self.dataset = dataset
            self.cache = cache
            self.clips = clips ?? dataset.clips.indices.filter { cache.frames(ofClip: $0) > 0 }
        }
    }

    public init(config: RunConfig, recipe: TrainingRecipe, dataset: Dataset, cache: FeatureCache, runs: [FoldRun],
                runDirectory: String, world: Communicator, testSet: TestSet? = nil) {
        self.testSet = testSet
        self.config = config
        self.recipe = recipe
        self.dataset = dataset
        self.cache = cache
        self.runs = runs
        self.runDirectory = runDirectory
        self.world = world
        datasetKey = recipe.dataKey(of: cache)
    }

    enum Start {
        case fresh
        case done(String)
        case from(String)
    }

    /// Trains every fold; `resume` nil starts afresh (refusing a folder that already holds a run),
    /// "" resumes each fold from its newest valid checkpoint, a `.ckpt` path resumes its fold from that file.
    public func run(resume: String?, foldParallel: Bool) throws -> Ending {
        let started = Date()
        var starts: [Start] = []
        for run in runs { starts.append(try agreedStart(run: run, resume: resume)) }
        if world.rank == 0 {
            let outputs = try RunOutputs(directory: runDirectory, fresh: resume == nil)
            try config.yaml.write(toFile: runDirectory + "/config.yaml", atomically: true, encoding: .utf8)
            try outputs.writeFoldPlan(runs, dataset: dataset, foldSeed: config.int("dataset.fold_seed"))
            for (run, start) in zip(runs, starts) {
                switch start {
                case .fresh: try outputs.forget(fold: run.fold, after: 0)
                case .from(let path): try outputs.forget(fold: run.fold, after: try Checkpoint.read(from: path).metadata.step)
                case .done: break
                }
            }
        }
        let groups = foldParallel ? max(1, min(runs.count, world.size)) : 1
        let group = world.rank * groups / world.size
        let communicator = groups > 1 ? try world.split(color: group, key: world.rank) : world
        if groups > 1 {
            Log.info("fold-parallel: \(groups) groups of about \(world.size / groups) ranks, each training its own folds")
        }
        let outputs = communicator.rank == 0 ? try RunOutputs(directory: runDirectory, fresh: false) : nil
        let logRank = Log.rank
        Log.rank = communicator.rank
        defer { Log.rank = logRank }
        var summaries: [RunOutputs.FoldSummary] = []
        var stopped = false
        for (index, run) in runs.enumerated() where index % groups == group && !stopped {
            switch try train(run, start: starts[index], communicator: communicator, outputs: outputs) {
            case .some(let summary): summaries += communicator.rank == 0 ? [summary] : []
            case .none: stopped = true
            }
        }
        Log.rank = logRank
        stopped = try world.allReduceMax(Int32(stopped ? 1 : 0)) > 0
        let gathered = try world.gatherv(Array(try JSONEncoder().encode(summaries)))
        guard !stopped else { return .stopped }
        // Where each rank ran and with how many BLAS threads: a job spread over hosts differently is told apart.
        let threads = try world.gather(Int64(BLAS.threads)).map(Int.init)
        let hosts = try world.hostNames()
        if world.rank == 0 {
            let all = try gathered.flatMap { try JSONDecoder().decode([RunOutputs.FoldSummary].self, from: Data($0)) }
                .sorted { ($0.fold ?? -1) < ($1.fold ?? -1) }
            let summary = try RunOutputs(directory: runDirectory, fresh: false)
                .writeSummary(experiment: config.string("experiment_name"), ranks: world.size, hosts: hosts, blasThreads: threads,
                              precision: recipe.precision, folds: all, seconds: Date().timeIntervalSince(started))
            if let mean = summary.accuracy_mean, let std = summary.accuracy_std {
                let spread = all.count > 1 ? String(format: " ± %.4f over %d runs", std, all.count) : ""
                Log.info(String(format: "done in %.0f s: validation accuracy %.4f%@; summary in %@/summary.json",
                                summary.seconds, mean, spread, runDirectory))
            }
        }
        return .finished
    }

    /// Trains one fold on `communicator`; its summary, or nil when a stop signal ended it.
    func train(_ run: FoldRun, start: Start, communicator: Communicator, outputs: RunOutputs?) throws -> RunOutputs.FoldSummary? {
        let store = CheckpointStore(directory: run.directory(in: runDirectory), keep: recipe.keepCheckpoints)
        var resumeFrom: Checkpoint?
        switch start {
        case .fresh:
            break
        case .done(let path):
            let final = try Checkpoint.read(from: path)
            try ResumeCheck.verify(checkpoint: final, path: path, config: config, datasetKey: datasetKey,
                                   precision: recipe.precision.training)
            Log.info("\(run.fold.map { "fold \($0)" } ?? "run") already finished (\(path))")
            return .init(fold: run.fold, validation_speakers: run.validationSpeakers, checkpoint: path, metrics: final.metadata.metrics,
                         test: try testScores(store, run: run, communicator: communicator))
        case .from(let path):
            let checkpoint = try Checkpoint.read(from: path)
            try ResumeCheck.verify(checkpoint: checkpoint, path: path, config: config, datasetKey: datasetKey,
                                   precision: recipe.precision.training)
            resumeFrom = checkpoint
        }
        let trainer = try Trainer(recipe: recipe, run: run, dataset: dataset, cache: cache, communicator: communicator,
                                  outputs: outputs, configYAML: config.yaml)
        guard case .finished(let metrics) = try trainer.train(store: communicator.rank == 0 ? store : nil, resume: resumeFrom) else {
            return nil
        }
        if communicator.rank == 0 { try trainer.checkpoint().write(to: store.finalPath) }
        try communicator.barrier()
        return .init(fold: run.fold, validation_speakers: run.validationSpeakers, checkpoint: store.finalPath, metrics: metrics,
                     test: try testScores(store, run: run, communicator: communicator))
    }

    /// The fold's final and best models scored on its test speakers (AudioMNIST's splits) or the test set,
    /// each rank of `communicator` its share of the clips (nil without either; the best model's nil when the
    /// fold kept none).
    func testScores(_ store: CheckpointStore, run: FoldRun, communicator: Communicator) throws -> RunOutputs.TestScores? {
        guard let test = run.testClips.isEmpty ? testSet : TestSet(dataset: dataset, cache: cache, clips: run.testClips) else {
            return nil
        }
        func score(_ path: String) throws -> ClassificationMetrics? {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            let model = try TrainedModel(path: path, precision: recipe.precision.inference)
            return try Trainer.evaluate(clips: test.clips, dataset: test.dataset, cache: test.cache,
                                        classifiers: [model.classifier()], communicator: communicator)
        }
        let scores = RunOutputs.TestScores(final: try score(store.finalPath), best: try score(store.bestPath))
        if let final = scores.final {
            Log.info(String(format: "%@ test set: accuracy %.4f (final model)%@", run.fold.map { "fold \($0)" } ?? "run",
                            final.accuracy, scores.best.map { String(format: ", %.4f (best model)", $0.accuracy) } ?? ""))
        }
        return scores
    }

    /// World rank 0 picks where a fold starts and tells the others, so all load the same file.
    func agreedStart(run: FoldRun, resume: String?) throws -> Start {
        guard let resume else { return .fresh }
        let store = CheckpointStore(directory: run.directory(in: runDirectory), keep: recipe.keepCheckpoints)
        var choice = [UInt8]()
        if world.rank == 0 {
            let named = resume.hasSuffix(".ckpt") ? try Checkpoint.read(from: resume) : nil
            if let named, named.metadata.fold == run.fold {
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
}
