import ArgumentParser
import Dist
import Train

/// `--config FILE` and `--set key=value`, shared by every command that reads a run config.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Run config (YAML, the seed's H2O Hydrogen Torch keys). Defaults apply without one.")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set training.epochs=3 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    func load() throws -> RunConfig {
        if let config { return try RunConfig.load(path: config, overrides: overrides) }
        var defaults = RunConfig()
        try defaults.apply(overrides: overrides)
        return defaults
    }

    /// `load()` on every rank, which then agree on the outcome: a bad config (the same file on every rank)
    /// ends the job with one line from rank 0 and a clean exit 1 on every rank, rather than a line per rank
    /// and MPI_Abort's banner. A rank that alone fails (a file missing on its node) says so with its rank.
    func load(agreedBy world: Communicator) throws -> RunConfig {
        let loaded = Result { try load() }
        var failure: Error?
        if case .failure(let error) = loaded { failure = error }
        let failures = try world.allReduceSum(Int64(failure == nil ? 0 : 1))
        guard failures > 0 else { return try loaded.get() }
        if let failure, world.rank == 0 || failures < world.size { Log.error(failure) }
        throw FailedOnEveryRank()
    }
}

/// `--data` and `--val-speakers`: the clips a run trains and validates on (train, and data showing them).
struct RunDataOptions: ParsableArguments {
    @Option(help: "Dataset folder or CSV (default: the config's dataset.train_dataframe / data_folder).")
    var data: String?

    @Option(help: "Validate on these speakers (comma-separated) instead of the fold plan.")
    var valSpeakers: String?

    var validationSpeakers: [String]? { valSpeakers?.split(separator: ",").map(String.init) }
}

/// Every rank knows the command failed and its reason has been logged: no abort needed.
struct FailedOnEveryRank: Error {}

/// Turns our one-line errors into a clean exit: the message on stderr, exit code 1.
func failing<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ExitCode { throw error } catch let error as CleanExit { throw error } catch {
        Log.error(error)
        throw ExitCode.failure
    }
}

/// Runs a command's work on every MPI rank (a singleton without mpirun): MPI initialised, logging from
/// rank 0, and on an error one line, MPI_Abort of the other ranks (none is left waiting in a
/// collective) and exit 1. `body` returns the exit status (0 for success).
func onEveryRank(_ body: (Communicator) throws -> Int32) throws {
    try Communicator.initialize()
    let world = Communicator.world
    Log.rank = world.rank
    let status: Int32
    do {
        status = try body(world)
    } catch is FailedOnEveryRank {
        try? Communicator.finalize()
        throw ExitCode.failure
    } catch {
        Log.error(error)
        if world.size > 1 { world.abort(code: 1) }
        try? Communicator.finalize()
        throw ExitCode.failure
    }
    try Communicator.finalize()
    if status != 0 { throw ExitCode(status) }
}
