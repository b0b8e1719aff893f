import ArgumentParser

@main
struct DigitsDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digits-dist",
        abstract: "Data-parallel ResNet training for spoken digits, launched with MPI.",
        subcommands: [SelfTestCommand.self])
}
