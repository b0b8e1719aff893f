import ArgumentParser

@main
struct DigitsDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digits-dist",
        abstract: "Data-parallel ResNet training for spoken digits, launched with MPI.",
        discussion: """
            Typical use:
              digits-dist synth --out demo-data --speakers 6 --per-digit 10
              digits-dist data --data demo-data --folds 5
              digits-dist features --wav demo-data/01/3_01_0.wav --npy 3.npy
            """,
        subcommands: [TrainCommand.self, DataCommand.self, SynthCommand.self, FeaturesCommand.self, BenchCommand.self, SelfTestCommand.self])
}
