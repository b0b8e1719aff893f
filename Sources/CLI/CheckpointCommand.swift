import ArgumentParser
import Datasets
import Foundation
import Train

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Look into checkpoints.",
        subcommands: [Inspect.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Print what a checkpoint holds and whether it verifies.",
            discussion: """
                Ends with `params_sha256: <hex>`, the SHA-256 of the parameter buffer's bytes, so two runs \
                can be compared for bitwise-equal weights. Exits 1 when the file does not verify.

                Examples:
                  digits-dist checkpoint inspect runs/demo/fold-0/final.ckpt
                  digits-dist checkpoint inspect runs/demo/fold-0/checkpoints/step-00000200.ckpt
                """)

        @Argument(help: "Checkpoint file.")
        var path: String

        func run() throws {
            try failing {
                let checkpoint = try Checkpoint.read(from: path)
                let m = checkpoint.metadata
                print("checkpoint: \(path) (verifies: CRC-32C ok)")
                let subBands = try RunConfig.parseSaved(yaml: m.config, source: path).int("architecture.subspectral_bands")
                print("model: \(m.architecture) width \(m.width), \(m.classes) classes, input \(m.inputHeight)x\(m.inputWidth), dropout \(m.dropout)"
                    + (subBands > 1 ? ", BatchNorm in \(subBands) mel bands" : ""))
                print("run: fold \(m.fold.map(String.init) ?? "-") (validation speakers \(m.validationSpeakers.joined(separator: ","))), "
                    + "seed \(m.seed), step \(m.step), written by \(m.ranks) rank\(m.ranks == 1 ? "" : "s")")
                if let metrics = m.metrics {
                    print(String(format: "validation: accuracy %.4f, macro ROC-AUC %.4f over %d clips",
                                 metrics.accuracy, metrics.macroROCAUC ?? .nan, metrics.clips))
                }
                for section in checkpoint.sections { print("section \(section.name): \(section.values.count) floats") }
                let parameters = checkpoint.section("parameters") ?? []
                print("params_sha256: " + parameters.withUnsafeBytes { SHA256.hex($0) })
            }
        }
    }
}
