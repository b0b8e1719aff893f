import ArgumentParser
import Foundation
import NN

@main
struct DigitsDist: ParsableCommand {
    /// `train --resume` may stand alone (resume the run folder) or take a path; the parser needs a value,
    /// so a bare `--resume` gets the placeholder meaning "this run folder".
    static func main() {
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let family = BLAS.familyForUnrecognisedCPU {
            // OpenBLAS reads its kernel choice once, when it loads: start again with it set (same process,
            // so mpirun and srun see nothing). If exec fails we go on with the generic kernels.
            // Exec the binary by its own path, so the process keeps its name (ps, pkill, Slurm's accounting).
            setenv("OPENBLAS_CORETYPE", family, 1)
            if let binary = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
                execv(binary, CommandLine.unsafeArgv)
            }
        }
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
              digits-dist synth --out demo-data --speakers 10 --per-digit 8
              mpirun -n 2 digits-dist train --config configs/demo.yaml --out runs/demo
              digits-dist predict --checkpoint runs/demo demo-data/03/7_03_0.wav
              digits-dist report runs/demo
              mpirun -n 8 digits-dist train --config configs/amnist.yaml --resume
            """,
        subcommands: [TrainCommand.self, ConfigCommand.self, EvaluateCommand.self, PredictCommand.self, ExportCommand.self, ReportCommand.self, CacheCommand.self,
                      CheckpointCommand.self, DataCommand.self, SynthCommand.self, FeaturesCommand.self, BenchCommand.self,
                      SelfTestCommand.self])
}
