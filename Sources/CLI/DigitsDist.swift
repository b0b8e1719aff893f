import ArgumentParser

@main
struct DigitsDist: ParsableCommand {
    /// `train --resume` may stand alone (resume the run folder) or take a path; the parser needs a value,
    /// so a bare `--resume` gets the placeholder meaning "this run folder".
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        for index in arguments.indices.reversed() where arguments[index] == "--resume"
            && (index + 1 == arguments.count || arguments[index + 1].hasPrefix("-")) {
            arguments.insert(TrainCommand.resumeHere, at: index + 1)
        }
        main(arguments)
    }

    static let configuration = CommandConfiguration(
        commandName: "digits-dist",
        abstract: "Data-parallel ResNet training for spoken digits, launched with MPI.",
        discussion: """
            Typical use:
              digits-dist synth --out demo-data --speakers 6 --per-digit 10
              digits-dist data --data demo-data --folds 5
              digits-dist features --wav demo-data/01/3_01_0.wav --npy 3.npy
            """,
        subcommands: [TrainCommand.self, EvaluateCommand.self, PredictCommand.self, ExportCommand.self, ReportCommand.self, CacheCommand.self,
                      CheckpointCommand.self, DataCommand.self, SynthCommand.self, FeaturesCommand.self, BenchCommand.self,
                      SelfTestCommand.self])
}
