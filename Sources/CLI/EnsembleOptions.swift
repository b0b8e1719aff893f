import ArgumentParser
import Train

/// `--checkpoint` (repeatable) and `--set` of inference keys: the models evaluate and predict average.
struct EnsembleOptions: ParsableArguments {
    @Option(help: "A checkpoint file, or a run folder (its final.ckpt, or every fold-K/final.ckpt); repeat it to average several.")
    var checkpoint: [String]

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "An inference key for every model, instead of the one its run saved (repeatable): prediction.tta_shift_seconds, "
            + "prediction.tta_vocal_tract, prediction.chunk_weighting, prediction.inference_chunk_seconds, …", valueName: "key=value"))
    var settings: [String] = []

    /// The models, and the first one's config with the `--set` keys. `chunkSeconds` gives every model's
    /// inference chunk from that config (nil: each model's training crop).
    func load(chunkSeconds: (RunConfig) -> Double? = { _ in nil }) throws -> (models: [TrainedModel], config: RunConfig) {
        let members = try TrainedModel.readEnsemble(at: checkpoint)
        var config = try RunConfig.parseSaved(yaml: members[0].checkpoint.metadata.config, source: members[0].path)
        try config.apply(inferenceOverrides: settings)
        let seconds = chunkSeconds(config)
        let models = try members.map {
            try TrainedModel(checkpoint: $0.checkpoint, path: $0.path, chunkSeconds: seconds, inferenceOverrides: settings)
        }
        return (models, config)
    }
}
