import ArgumentParser
import Dist
import Foundation
import NN
import Train

struct BenchAllReduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "What the gradient all-reduce costs a training step, per bucket size, on the job's transport.",
        discussion: """
            Run it under the job's own launcher (mpirun or srun, same hosts and network settings): every rank \
            runs real training steps of the model and the gradient all-reduce goes over whatever transport \
            Open MPI chose for the job (shared memory on one host, TCP or UCX across hosts). For one blocking \
            all-reduce after backward and for each --megabytes bucket size (buckets started as backward \
            finishes their tensors; MPI called between layers to advance them, and for comparison not), it prints the all-reduce alone, the step with it, and the step without \
            any communication; exposed = step with it − step without, hidden = the rest of the all-reduce, \
            overlapped with backward. Each figure is the median of --rounds rounds (the slowest rank's mean \
            over --steps steps); the variants take turns within a round. The run's bucket size is the config's \
            training.bucket_megabytes. scripts/bench-hosts.sh runs it across two namespace hosts, bare and shaped.

            Examples:
              mpirun -n 2 digits-dist bench allreduce --threads 1
              mpirun -n 2 --hostfile hosts digits-dist bench allreduce --megabytes 0.25 1 4 --arch resnet50 --width 64
            """)

    @OptionGroup var model: BenchModelOptions

    @Option(parsing: .upToNextOption, help: "Bucket sizes in MB to measure (besides the blocking all-reduce).")
    var megabytes: [Double] = [0.25, 1, 4]

    @Option(help: "Rounds; each figure is the median over them.")
    var rounds: Int = 5

    @Option(help: "Steps per variant in a round.")
    var steps: Int = 5

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard megabytes.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw ValidationError("--megabytes \(megabytes.map { "\($0)" }.joined(separator: " ")): every size must be above 0")
        }
    }

    func run() throws {
        try onEveryRank { world in
            let loop = try TrainingStepLoop(arch: try Architecture(parsing: model.arch), width: model.width, batch: model.batch,
                                            threads: threading.blasThreads)
            var bucketer: GradientBucketer?
            var failure: Error?
            loop.model.gradientsReady = { range in
                do { try bucketer?.gradientsReady(from: range.lowerBound) } catch { failure = error }
            }
            let scale = 1 / Float(world.size)
            let result = try AllReduceBenchmark.run(
                communicator: world, gradients: loop.model.gradients, count: loop.model.parameterCount,
                tensorOffsets: loop.model.parameterSlots.map(\.offset),
                bucketSizes: megabytes.map { Int($0 * 1_048_576) }, rounds: rounds, stepsPerRound: steps
            ) { buckets in
                bucketer = buckets
                try loop.step { try buckets?.finish(scale: scale) }
                if let failure { throw failure }
            }
            let hosts = try world.hostNames()
            guard world.rank == 0 else { return 0 }
            let environment = ProcessInfo.processInfo.environment
            let transport = ["btl", "pml", "btl_tcp_if_include"].compactMap { key in
                environment["OMPI_MCA_" + key].map { "\(key)=\($0)" }
            }
            print(String(format: "%@ width %d, batch %d per rank, %d BLAS threads per rank; %d ranks on %d hosts (%@)%@",
                         model.arch, model.width, model.batch, threading.blasThreads, world.size, Set(hosts).count,
                         Array(Set(hosts)).sorted().joined(separator: ", "),
                         transport.isEmpty ? "" : "; Open MPI " + transport.joined(separator: " ")))
            print(result)
            print(String(format: "training's bucket size for this model (training.bucket_megabytes: 0): %.2f MB",
                         Double(GradientBucketer.automaticBucketBytes(count: loop.model.parameterCount)) / 1_048_576))
            return 0
        }
    }
}
