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
            is scored as their average (k-fold ensemble); so are the models of every --checkpoint given (runs \
            of other seeds or recipes: an ensemble). Clips are cut into the training chunk length and \
            their chunks' probabilities averaged. With --adapt-batchnorm every model is first fitted to the \
            evaluated clips, their labels unused and the checkpoint left as it is: its BatchNorm scales and shifts \
            by --adapt-epochs passes of entropy minimisation (TENT; every rank on all the clips), then its \
            BatchNorm statistics re-fitted to the clips' own (AdaBN), as for a new caller or microphone whose \
            recordings are at hand; such scores are transductive, not comparable with plain ones. \
            --save-adapted FILE then writes the adapted model (one checkpoint), for predict to use on that \
            caller's or site's later recordings one at a time.

            Examples:
              digits-dist evaluate --checkpoint runs/demo/fold-0/final.ckpt --data demo-data
              mpirun -n 4 digits-dist evaluate --checkpoint runs/amnist --data data/AudioMNIST/data
              digits-dist evaluate --checkpoint runs/seed-1 --checkpoint runs/seed-2 --data held-out.csv
              digits-dist evaluate --checkpoint runs/demo --set prediction.tta_vocal_tract=0.1 --data held-out.csv
              digits-dist evaluate --checkpoint runs/demo --data one-callers-clips.csv --adapt-batchnorm
              digits-dist evaluate --checkpoint runs/demo/final.ckpt --data site-clips --adapt-batchnorm --save-adapted site.ckpt
            """)

    @OptionGroup var ensemble: EnsembleOptions

    @Option(help: "Dataset folder or CSV.")
    var data: String

    @OptionGroup var adapt: AdaptOptions

    @Option(help: ArgumentHelp("With --adapt-batchnorm and one model: write the adapted model to this checkpoint file.",
                               valueName: "file"))
    var saveAdapted: String?

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if saveAdapted != nil && !adapt.adaptBatchnorm { throw ValidationError("--save-adapted needs --adapt-batchnorm") }
    }

    func run() throws {
        try onEveryRank { world in
            let models = try ensemble.load().models
            if let saveAdapted, models.count > 1 {
                throw ValidationError("--save-adapted \(saveAdapted): saves one model, and the checkpoints given hold \(models.count)")
            }
            BLAS.setThreads(compute.blasThreads)
            let audio = models[0].metadata.audio
            let dataset = try Dataset.load(path: data)
            let cache = try compute.openCache(dataset: dataset, settings: audio, workers: 0, world: world)
            let clips = dataset.clips.indices.filter { cache.frames(ofClip: $0) > 0 }
            let metrics = try Trainer.evaluate(clips: Array(clips), dataset: dataset, cache: cache,
                                               classifiers: models.map { $0.classifier() }, communicator: world,
                                               adaptBatchNorm: adapt.adaptBatchnorm, adaptEpochs: adapt.adaptEpochs)
            if let saveAdapted, world.rank == 0 {
                try models[0].writeAdapted(to: saveAdapted)
                Log.info("\(saveAdapted): \(models[0].path) with its BatchNorm adapted to \(data)")
            }
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
