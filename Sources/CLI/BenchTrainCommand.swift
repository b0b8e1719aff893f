import ArgumentParser
import Augment
import Datasets
import Dist
import Foundation
import NN
import Train

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training steps per second: forward, loss, backward, AdamW on random 128×44 inputs.",
        discussion: """
            Prints samples/s, ms/step, achieved GFLOP/s, the share of the sgemm peak on the same threads \
            (`bench gemm`), peak resident memory and where the time goes per layer kind. Under mpirun, \
            --batch is the per-rank batch (weak scaling) and every step all-reduces the gradients in \
            buckets overlapped with backward, as training does; the line reports global samples/s. \
            scripts/bench-train.sh runs PyTorch on the same model and step and prints the ratio; \
            scripts/bench-scaling.sh compares 1 and 2 ranks with PyTorch DDP.

            Examples:
              digits-dist bench train --arch resnet18 --width 16 --batch 32 --steps 20 --threads 2
              digits-dist bench train --arch resnet50 --width 64 --batch 32 --steps 5 --layers
              mpirun -n 2 digits-dist bench train --threads 1 --batch 32
            """)

    @OptionGroup var model: BenchModelOptions

    @Option(help: "Timed steps (after warm-up).")
    var steps: Int = 20

    @OptionGroup var threading: ThreadOptions

    @Option(help: ArgumentHelp(
        "fp32 or bf16 matrix products (default: what training with the default config and --set would use).",
        valueName: "fp32|bf16"))
    var precision: Precision?

    @Option(help: "Gradient all-reduce: overlapped (buckets during backward) or blocking (one all-reduce after it).")
    var allreduce: GradientBucketer.Mode = .overlapped

    @Option(help: "Bucket size in MB for the overlapped all-reduce (default: training's, about 8 buckets of the gradient).")
    var bucketMegabytes: Double?

    @Flag(help: "Skip the sgemm peak measurement.")
    var noPeak = false

    @Flag(help: "Also print the time of every convolution, forward and backward (torchvision's layer names).")
    var layers = false

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "A run config key=value (repeatable): architecture.subspectral_bands shapes the model; with any, the crops "
            + "of one step (window, augmentations, normalisation) are timed beside the step.", valueName: "key=value"))
    var settings: [String] = []

    @Flag(help: "Time the training crops of the default config beside the step.")
    var crops = false

    func run() throws {
        try onEveryRank { world in
            let architecture = try Architecture(parsing: model.arch)
            let threadCount = threading.blasThreads
            var config = RunConfig()
            try config.apply(overrides: settings)
            let precision = try self.precision.map { try $0.requireAvailable() }
                ?? Precision.choose(mixed: config.bool("environment.mixed_precision_training"),
                                    override: ProcessInfo.processInfo.environment["DIGITS_DIST_BF16"]).precision
            // Every rank opens the noise folder's cache (under mpirun they build it together); rank 0 times the crops.
            var crop: TrainingCrop?
            if crops || !settings.isEmpty {
                crop = try TrainingRecipe(config: config, seed: 1).crop
                crop?.augmentation.recordedNoise = try ComputeOptions.recordedNoise(
                    config: config, directory: ComputeOptions.defaultCacheDirectory, world: world)
            }
            var bucketer: GradientBucketer?
            let result = try TrainBenchmark.run(arch: architecture, width: model.width, batch: model.batch,
                                                threads: threadCount, precision: precision, steps: steps,
                                                subSpectralBands: config.int("architecture.subspectral_bands"),
                                                distribute: world.size == 1 ? nil : { network in
                let bytes = bucketMegabytes.map { Int($0 * 1_048_576) }
                    ?? GradientBucketer.automaticBucketBytes(count: network.parameterCount)
                let buckets = try GradientBucketer(model: network, communicator: world, bucketBytes: bytes, mode: allreduce)
                bucketer = buckets
                var failure: Error?
                network.gradientsReady = { range in
                    do { try buckets.gradientsReady(from: range.lowerBound) } catch { failure = error }
                }
                return {
                    try buckets.finish(scale: 1 / Float(world.size))
                    if let failure { throw failure }
                }
            })
            let slowest = try world.allReduceMax(result.millisecondsPerStep)
            guard world.rank == 0 else { return 0 }
            print(result)
            print("OpenBLAS \(BLAS.kernelFamily) kernels")
            if layers { print(result.convolutionTable) }
            if world.size > 1 {
                print(String(format: "%d ranks × %d threads, %@ all-reduce in %d buckets: %.1f ms/step, %.1f samples/s global",
                             world.size, threadCount, allreduce.rawValue, bucketer?.buckets.count ?? 0, slowest,
                             Double(model.batch * world.size) / slowest * 1e3))
            }
            if !noPeak {
                let peak = try TrainBenchmark.gemmPeak(threads: threadCount, precision: precision)
                print(String(format: "%@ GEMM peak %.1f GFLOP/s on %d threads: the step reaches %.0f%% of it "
                             + "(effective, Winograd convolutions counted at their direct cost; executed %.0f%%)",
                             precision.name, peak, threadCount, 100 * result.gflopsPerSecond / peak,
                             100 * result.executedGflopsPerSecond / peak))
            }
            if let crop {
                let milliseconds = crop.millisecondsPerBatch(model.batch)
                print(String(format: "training crops of one step (%@): %.2f ms, %.1f%% of the step",
                             settings.isEmpty ? "defaults" : settings.joined(separator: " "), milliseconds,
                             100 * milliseconds / result.millisecondsPerStep))
            }
            print(String(format: "peak resident memory %.0f MB", BenchFeaturesCommand.peakResidentMegabytes()))
            return 0
        }
    }
}

extension GradientBucketer.Mode: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

extension Precision {
    /// Itself, or a one-line error where this CPU cannot run it.
    func requireAvailable() throws -> Precision {
        guard self == .fp32 || Precision.bf16Available else {
            throw ValidationError("--precision bf16: this CPU has no AVX512_BF16")
        }
        return self
    }
}

/// The model and per-rank batch the benchmarks step (bench train, bench allreduce).
struct BenchModelOptions: ParsableArguments {
    @Option(help: "resnet18, resnet34 or resnet50.")
    var arch: String = "resnet18"

    @Option(help: "Channels of the first stage (64 = standard ResNet).")
    var width: Int = 16

    @Option(help: "Batch per step (per rank under mpirun).")
    var batch: Int = 32
}

struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "The GEMM peak (GFLOP/s of a square product through the engine's grid) on the given threads.",
        discussion: "Where the CPU has AVX512_BF16 it also prints one core's arithmetic rate of bf16 dot products and Float32 FMAs, "
            + "from which mixed precision decides whether bf16 pays on this CPU.")

    @Option(help: "OpenBLAS threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Matrix size n (2·n³ FLOP per call).")
    var size: Int = 2048

    @Option(help: ArgumentHelp("Float32 (OpenBLAS sgemm) or bf16 operands with Float32 sums.", valueName: "fp32|bf16"))
    var precision: Precision = .fp32

    func run() throws {
        try failing {
            let precision = try self.precision.requireAvailable()
            print(String(format: "%@ GEMM %d×%d on %d threads: %.1f GFLOP/s", precision.name, size, size, threads,
                         try TrainBenchmark.gemmPeak(threads: threads, precision: precision, size: size)))
            if let rates = Precision.arithmeticRates {
                print(String(format: "one core: bf16 dot products %.1f GFLOP/s, Float32 FMAs %.1f GFLOP/s (%.2f×)",
                             rates.bf16 * 1e-9, rates.fp32 * 1e-9, rates.bf16 / rates.fp32))
            }
        }
    }
}
