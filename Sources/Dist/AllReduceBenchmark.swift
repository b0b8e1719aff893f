import Foundation

/// What the gradient all-reduce costs a real training step, per bucket size: the all-reduce alone, and the
/// step with it against the same step without any communication. The difference is the all-reduce's
/// exposed time; the rest of it was hidden behind backward. Every rank must call `run`.
public enum AllReduceBenchmark {
    public struct Row: Sendable {
        /// nil: one blocking all-reduce of the whole buffer after backward.
        public var bucketBytes: Int?
        public var bucketCount: Int
        /// Whether MPI was called between layers to advance the started buckets.
        public var drivesProgress: Bool
        /// The all-reduce with nothing beside it (buckets all started at once, then waited for).
        public var allReduceMilliseconds: Double
        /// A training step with the all-reduce.
        public var stepMilliseconds: Double
    }

    public struct Result: Sendable, CustomStringConvertible {
        public var ranks: Int
        public var floatCount: Int
        /// The same step without communication.
        public var computeStepMilliseconds: Double
        public var rows: [Row]

        public func exposedMilliseconds(_ row: Row) -> Double { max(0, row.stepMilliseconds - computeStepMilliseconds) }
        public func hiddenMilliseconds(_ row: Row) -> Double { max(0, row.allReduceMilliseconds - exposedMilliseconds(row)) }

        public var description: String {
            var lines = [String(format: "all-reduce of %d floats (%.2f MB) on %d ranks; a step without it: %.2f ms",
                                floatCount, Double(floatCount * 4) / 1e6, ranks, computeStepMilliseconds),
                         "  buckets of     MPI during backward  buckets  all-reduce ms   step ms   exposed ms   hidden ms   exposed share"]
            for row in rows {
                let size = row.bucketBytes.map { String(format: "%7.2f MB", Double($0) / 1_048_576) } ?? " blocking "
                let progress = row.bucketBytes == nil ? "-" : row.drivesProgress ? "progress per layer" : "none until the end"
                lines.append(String(format: "  %@  %@  %7d  %13.2f  %8.2f  %11.2f  %10.2f  %12.1f%%", size,
                                    progress.padding(toLength: 19, withPad: " ", startingAt: 0), row.bucketCount,
                                    row.allReduceMilliseconds, row.stepMilliseconds, exposedMilliseconds(row),
                                    hiddenMilliseconds(row), 100 * exposedMilliseconds(row) / row.stepMilliseconds))
            }
            return lines.joined(separator: "\n")
        }
    }

    /// - Parameters:
    ///   - gradients: the `count` floats the step's backward writes, cut into tensors at `tensorOffsets`.
    ///   - bucketSizes: bucket sizes in bytes to measure, besides the blocking all-reduce; each with MPI
    ///     progress driven between layers and without it.
    ///   - step: one training step whose backward hands each finished tensor to the bucketer
    ///     (`gradientsReady(from:)`) and whose end calls `finish(scale:)`; nil means no communication.
    /// - Returns: each time the median over `rounds` of the slowest rank's mean over `stepsPerRound`; the
    ///   variants take turns within a round, so drift on a shared machine spreads over all of them.
    public static func run(communicator: Communicator, gradients: UnsafeMutablePointer<Float>, count: Int,
                           tensorOffsets: [Int], bucketSizes: [Int], rounds: Int = 5, stepsPerRound: Int = 5,
                           step: (GradientBucketer?) throws -> Void) throws -> Result {
        guard rounds > 0, stepsPerRound > 0 else {
            throw DistError.invalidArgument("benchmark needs positive rounds (\(rounds)) and steps per round (\(stepsPerRound))")
        }
        let bucketers = try [GradientBucketer(communicator: communicator, gradients: gradients, count: count,
                                              tensorOffsets: tensorOffsets, bucketBytes: Int.max, mode: .blocking)]
            + bucketSizes.flatMap { size in
                try [true, false].map { drivesProgress in
                    let bucketer = try GradientBucketer(communicator: communicator, gradients: gradients, count: count,
                                                        tensorOffsets: tensorOffsets, bucketBytes: size, mode: .overlapped)
                    bucketer.drivesProgress = drivesProgress
                    return bucketer
                }
            }
        let scale = 1 / Float(communicator.size)
        /// The slowest rank's mean milliseconds over `repeats` calls of `body`, after a barrier.
        func milliseconds(repeats: Int, _ body: () throws -> Void) throws -> Double {
            try communicator.barrier()
            let start = Communicator.wallTime()
            for _ in 0..<repeats { try body() }
            return try communicator.allReduceMax((Communicator.wallTime() - start) * 1e3 / Double(repeats))
        }
        try step(nil)  // warm-up: first-touch of buffers, thread start
        for bucketer in bucketers { try step(bucketer) }
        var compute: [Double] = [], steps = [[Double]](repeating: [], count: bucketers.count)
        var alone = [[Double]](repeating: [], count: bucketers.count)
        for _ in 0..<rounds {
            compute.append(try milliseconds(repeats: stepsPerRound) { try step(nil) })
            for (index, bucketer) in bucketers.enumerated() {
                steps[index].append(try milliseconds(repeats: stepsPerRound) { try step(bucketer) })
                alone[index].append(try milliseconds(repeats: stepsPerRound) {
                    try bucketer.gradientsReady(from: 0)
                    try bucketer.finish(scale: scale)
                })
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let rows = bucketers.indices.map { index in
            Row(bucketBytes: index == 0 ? nil : bucketSizes[(index - 1) / 2], bucketCount: bucketers[index].buckets.count,
                drivesProgress: bucketers[index].drivesProgress, allReduceMilliseconds: median(alone[index]),
                stepMilliseconds: median(steps[index]))
        }
        return Result(ranks: communicator.size, floatCount: count, computeStepMilliseconds: median(compute), rows: rows)
    }
}
