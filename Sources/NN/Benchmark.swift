import CBLAS
import Foundation

/// Training-step throughput of the engine: S full steps (forward, BCE-with-logits, backward, AdamW) on
/// random 1×128×44 inputs, timed after warm-up, with a per-layer-kind profile and the machine's sgemm
/// peak for comparison. Called by the CLI; not a test.
public enum TrainBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public let architecture: Architecture
        public let precision: Precision
        public let width, batch, threads, steps, parameterCount: Int
        public let samplesPerSecond, millisecondsPerStep: Double
        /// Process CPU time per step over wall time: ≈ threads when the cores were ours, less when other
        /// processes competed (then the wall-clock numbers understate the engine).
        public let cpuUtilisation: Double
        /// Convolution and fc FLOPs per step: 2·M·N·K per GEMM, forward plus twice that for backward,
        /// counted as direct (im2col) convolutions also for the Winograd ones, which multiply about 2× less:
        /// an effective rate, as cuDNN's and oneDNN's benchmarks report it.
        public let flopsPerStep: Double
        public let gflopsPerSecond: Double
        /// The rate of the multiply-adds really run.
        public let executedGflopsPerSecond: Double
        /// Milliseconds per step per layer kind, largest first.
        public let profile: [(kind: LayerKind, milliseconds: Double)]
        /// Milliseconds per step of each convolution, forward and backward, in network order.
        public let convolutions: [(name: String, forward: Double, backward: Double)]

        /// One line per convolution: its shape of work and where its time goes.
        public var convolutionTable: String {
            let lines = convolutions.map { layer in
                String(format: "  %@ %7.2f ms forward %7.2f ms backward  %5.1f%% of the step",
                       layer.name.padding(toLength: 22, withPad: " ", startingAt: 0), layer.forward, layer.backward,
                       100 * (layer.forward + layer.backward) / millisecondsPerStep)
            }
            return (["per convolution (ms/step):"] + lines).joined(separator: "\n")
        }

        public var description: String {
            var lines = [String(format: "%@ width %d batch %d threads %d %@: %d parameters, %.1f ms/step, %.1f samples/s, "
                                + "%.2f GFLOP/step, %.1f GFLOP/s (%.1f executed), CPU %.2f cores",
                                architecture.rawValue, width, batch, threads, precision.name, parameterCount,
                                millisecondsPerStep,
                                samplesPerSecond, flopsPerStep * 1e-9, gflopsPerSecond, executedGflopsPerSecond,
                                cpuUtilisation)]
            for (kind, milliseconds) in profile where milliseconds > 0 {
                let label = kind.label.padding(toLength: 15, withPad: " ", startingAt: 0)
                lines.append(String(format: "  %@ %8.2f ms/step  %5.1f%%", label, milliseconds,
                                    100 * milliseconds / millisecondsPerStep))
            }
            return lines.joined(separator: "\n")
        }
    }

    /// `distribute`, for data-parallel runs, gets the model once to install its backward hooks and returns
    /// what each step must do between backward and the optimizer (complete the gradient all-reduce).
    public static func run(arch: Architecture, width: Int, batch: Int, threads: Int, precision: Precision = .fp32,
                           steps: Int, warmupSteps: Int = 2,
                           inputHeight: Int = 128, inputWidth: Int = 44, subSpectralBands: Int = 1, seed: UInt64 = 0,
                           distribute: ((ResNet) throws -> () throws -> Void)? = nil) throws -> Result {
        try require(steps >= 1, "benchmark steps", steps, "must be at least 1")
        try require(warmupSteps >= 0, "warm-up steps", warmupSteps, "must be non-negative")
        let loop = try TrainingStepLoop(arch: arch, width: width, batch: batch, threads: threads, precision: precision,
                                        inputHeight: inputHeight, inputWidth: inputWidth,
                                        subSpectralBands: subSpectralBands, seed: seed)
        let model = loop.model
        let completeGradients = try distribute?(model)
        for _ in 0..<warmupSteps { try loop.step(completeGradients: completeGradients) }
        model.enableProfiling()
        let cpuStart = processCPUSeconds()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { try loop.step(completeGradients: completeGradients) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / Double(steps)
        let cpuSeconds = (processCPUSeconds() - cpuStart) / Double(steps)

        let flops = 3 * Double(model.forwardFlopsPerSample) * Double(batch)
        let executedFlops = 3 * Double(model.executedFlopsPerSample) * Double(batch)
        let profile = model.profile.map { (kind: $0.key, milliseconds: $0.value * 1e3 / Double(steps)) }
            .sorted { $0.milliseconds > $1.milliseconds }
        let perStep = 1e3 / Double(steps)
        let convolutions = model.convolutionProfile.map { ($0.name, $0.forward * perStep, $0.backward * perStep) }
        return Result(architecture: arch, precision: precision, width: width, batch: batch, threads: threads, steps: steps,
                      parameterCount: model.parameterCount, samplesPerSecond: Double(batch) / seconds,
                      millisecondsPerStep: seconds * 1e3, cpuUtilisation: cpuSeconds / seconds, flopsPerStep: flops,
                      gflopsPerSecond: flops / seconds * 1e-9, executedGflopsPerSecond: executedFlops / seconds * 1e-9,
                      profile: profile, convolutions: convolutions)
    }

    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    /// GFLOP/s of a square GEMM (2·n³ per call) on `threads` threads, through the engine's grid of
    /// single-threaded products as training runs them, in `precision`: the ceiling for the above.
    public static func gemmPeak(threads: Int, precision: Precision = .fp32, size: Int = 2048,
                                repeats: Int = 5) throws -> Double {
        try require(threads >= 1, "thread count", threads, "must be at least 1")
        try require(size >= 1 && repeats >= 1, "sgemm size/repeats", "\(size)/\(repeats)", "must be positive")
        BLAS.setThreads(threads)
        let count = size * size
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 3 * count)
        defer { a.deallocate() }
        var rng = Xoshiro256(seed: 1)
        for i in 0..<(3 * count) { a[i] = rng.nextUniform() }
        let b = a + count, c = a + 2 * count
        gemm(precision, transposeA: false, transposeB: false, m: size, n: size, k: size, a, lda: size, b, ldb: size,
             beta: 0, c, ldc: size)  // warm-up: thread start, page faults
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            gemm(precision, transposeA: false, transposeB: false, m: size, n: size, k: size, a, lda: size, b,
                 ldb: size, beta: 0, c, ldc: size)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return 2 * Double(size) * Double(size) * Double(size) / best * 1e-9
    }
}

/// Full training steps (forward, BCE-with-logits, backward, AdamW) of one model on fixed random
/// 1×inputHeight×inputWidth inputs, everything allocated once: what the benchmarks time.
public final class TrainingStepLoop {
    public let model: ResNet
    public let batch: Int
    private let optimizer: AdamW
    private let input, dlogits: UnsafeMutablePointer<Float>
    private let labels: [Int]

    public init(arch: Architecture, width: Int, batch: Int, threads: Int, precision: Precision = .fp32,
                inputHeight: Int = 128, inputWidth: Int = 44, subSpectralBands: Int = 1, seed: UInt64 = 0) throws {
        try require(threads >= 1, "thread count", threads, "must be at least 1")
        BLAS.setThreads(threads)
        model = try ResNet(arch: arch, width: width, inputHeight: inputHeight, inputWidth: inputWidth, maxBatch: batch,
                           subSpectralBands: subSpectralBands, seed: seed)
        model.precision = precision
        optimizer = try AdamW(parameterCount: model.parameterCount)
        self.batch = batch
        var rng = Xoshiro256(seed: seed &+ 1)
        let inputCount = batch * inputHeight * inputWidth
        input = .allocate(capacity: inputCount)
        for i in 0..<inputCount { input[i] = Float(rng.nextGaussian()) }
        labels = (0..<batch).map { _ in Int(rng.next() % 10) }
        dlogits = .allocate(capacity: batch * 10)
    }

    deinit {
        input.deallocate()
        dlogits.deallocate()
    }

    /// One step; `completeGradients` runs between backward and the optimizer (the all-reduce's end).
    public func step(completeGradients: (() throws -> Void)? = nil) throws {
        let logits = try model.forward(input: input, batch: batch, training: true)
        _ = try model.timed(.loss) {
            try Loss.binaryCrossEntropyWithLogits(logits: logits, labels: labels, batch: batch, classes: 10,
                                                  dlogits: dlogits)
        }
        model.backward(dlogits: dlogits)
        try completeGradients?()
        try model.timed(.optimizer) {
            try optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: 1e-3)
            model.zeroGradients()
        }
    }
}
