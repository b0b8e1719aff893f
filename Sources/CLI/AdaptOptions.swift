import ArgumentParser
import Train

/// `--adapt-batchnorm` and `--adapt-epochs`: evaluate and predict fit the models to the clips they are about to
/// score, without their labels (transductive: such scores are not comparable with plain ones).
struct AdaptOptions: ParsableArguments {
    @Flag(help: ArgumentHelp("Adapt each model to the clips it scores (no labels used): BatchNorm's scales and shifts by "
                             + "--adapt-epochs passes of entropy minimisation, then its statistics re-fitted."))
    var adaptBatchnorm = false

    @Option(name: .customLong("adapt-epochs"),
            help: ArgumentHelp("With --adapt-batchnorm: passes over the clips lowering the model's entropy on them (TENT; "
                               + "default 10; each pass reads at most \(ChunkedClassifier.maxAdaptationChunksPerPass) chunks, a random subset of a larger set); "
                               + "0 re-fits the statistics alone (AdaBN).", valueName: "n"))
    var givenEpochs: Int?

    /// Entropy passes before the statistics are re-fitted.
    var adaptEpochs: Int { givenEpochs ?? 10 }

    func validate() throws {
        if let givenEpochs {
            guard adaptBatchnorm else { throw ValidationError("--adapt-epochs needs --adapt-batchnorm") }
            guard givenEpochs >= 0 else { throw ValidationError("--adapt-epochs \(givenEpochs): must be 0 or more") }
        }
    }
}
