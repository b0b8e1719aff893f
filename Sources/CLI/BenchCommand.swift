import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed (benchmarks report rates; compare side by side in one run).",
        subcommands: [BenchTrainCommand.self, BenchAllReduceCommand.self, BenchGemmCommand.self, BenchFeaturesCommand.self])
}
