import Foundation
import NN

/// Whether a checkpoint may continue under the current config: keys that shape the model, the data,
/// the optimisation or its randomness must be unchanged; keys about bookkeeping may change.
public enum ResumeCheck {
    /// Keys a resumed run may change (`training.epochs` lengthens or shortens the schedule from here on).
    static let changeable: Set<String> = [
        "experiment_name", "training.epochs", "training.evaluation_epochs", "training.checkpoint_every_steps",
        "training.keep_checkpoints", "training.bucket_megabytes", "training.save_best_checkpoint",
        "training.calculate_train_metric", "environment.number_of_workers", "dataset.folds",
    ]

    /// `precision`: what this run's training steps compute in, which must be what the checkpoint's did.
    public static func verify(checkpoint: Checkpoint, path: String, config: RunConfig, datasetKey: String,
                              precision: Precision) throws {
        let saved = try RunConfig.parseSaved(yaml: checkpoint.metadata.config, source: path)
        for spec in ConfigKey.all where spec.ignoredBecause == nil && !changeable.contains(spec.name)
            && !spec.name.hasPrefix("logging.") && !spec.name.hasPrefix("prediction.") {
            let before = saved.values[spec.name], now = config.values[spec.name]
            guard before == now else {
                throw ConfigError("cannot resume from \(path): \(spec.name) was \(before?.description ?? "unset"), "
                    + "is now \(now?.description ?? "unset") (start a new run folder, or set it back)")
            }
        }
        let trainedIn = PrecisionPlan.training(of: checkpoint.metadata)
        guard trainedIn == precision else {
            throw ConfigError("cannot resume from \(path): it trained in \(trainedIn.name), this run would train in "
                + "\(precision.name) (see the log's training precision line; DIGITS_DIST_BF16=on or off chooses)")
        }
        guard checkpoint.metadata.datasetKey == datasetKey else {
            throw ConfigError("cannot resume from \(path): the dataset's files, the noise recordings or the audio settings changed since it was written")
        }
    }
}
