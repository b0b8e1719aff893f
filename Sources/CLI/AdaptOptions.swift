import ArgumentParser

/// `--adapt-batchnorm` and `--adapt-epochs`: evaluate and predict fit the models to the clips they are about to
/// score, without their labels (transductive: such scores are not comparable with plain ones).
struct AdaptOptions: ParsableArguments {
    @Flag(help: ArgumentHelp("Adapt each model to the clips it scores (no labels used): BatchNorm's scales and shifts by "
                             + "--adapt-epochs passes of entropy minimisation, then its statistics re-fitted."))
    var adaptBatchnorm = false

    @Option(help: ArgumentHelp("With --adapt-batchnorm: passes over the clips lowering the model's entropy on them (TENT); "
                               + "0 re-fits the statistics alone (AdaBN).", valueName: "n"))
    var adaptEpochs = 10

    func validate() throws {
        guard adaptEpochs >= 0 else { throw ValidationError("--adapt-epochs \(adaptEpochs): must be 0 or more") }
    }
}
