import ArgumentParser
import Datasets
import Dist
import Foundation
import NN
import Train

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a trained model on a dataset (also under mpirun, sharded over ranks).",
        discussion: """
            Prints one JSON object: clips, accuracy, macro one-vs-rest ROC-AUC, the confusion matrix \
            ([true][predicted]), per-speaker and per-digit accuracy. A run folder with several fold models \
            is scored as their average (k-fold ensemble). Clips are cut into the training chunk length and \
            their chunks' probabilities averaged.

            Examples:
              digits-dist evaluate --checkpoint runs/demo/fold-0/final.ckpt --data demo-data
              mpirun -n 4 digits-dist evaluate --checkpoint runs/amnist --data data/AudioMNIST/data
            """)

    @Option(help: "A checkpoint file, or a run folder (its final.ckpt, or every fold-K/final.ckpt).")
    var checkpoint: String

    @Option(help: "Dataset folder or CSV.")
    var data: String

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try onEveryRank { world in
            let paths = try TrainedModel.checkpoints(at: checkpoint)
            let models = try paths.map { try TrainedModel(path: $0) }
            BLAS.setThreads(compute.blasThreads)
            let audio = models[0].metadata.audio
            for model in models.dropFirst() where model.metadata.audio != audio {
                throw CheckpointError(path: model.path, problem: "was trained on other audio settings than \(paths[0])")
            }
            let dataset = try Dataset.load(path: data)
            let cache = try compute.openCache(dataset: dataset, settings: audio, workers: 0, world: world)
            let clips = dataset.clips.indices.filter { cache.frames(ofClip: $0) > 0 }
            let metrics = try Trainer.evaluate(clips: Array(clips), dataset: dataset, cache: cache,
                                               classifiers: models.map { $0.classifier() }, communicator: world)
            if let metrics {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(metrics), as: UTF8.self))
                Log.info(String(format: "%@: accuracy %.4f, macro ROC-AUC %.4f on %d clips (%d model%@)", data,
                                metrics.accuracy, metrics.macroROCAUC ?? .nan, metrics.clips, models.count, models.count == 1 ? "" : "s"))
            }
            return 0
        }
    }
}
