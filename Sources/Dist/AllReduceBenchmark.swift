import Foundation

/// Measures the gradient all-reduce the way training uses it: bucketed and overlapped with a simulated
/// backward pass, against backward followed by one blocking all-reduce. Every rank must call `run`.
public enum AllReduceBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var ranks: Int
        public var floatCount: Int
        public var bucketBytes: Int
        public var bucketCount: Int
        /// One blocking MPI_Allreduce over the whole buffer (plus the 1/ranks scaling).
        public var blockingSeconds: Double
        /// All buckets started at once, then waited for: the bucketed path's pure communication cost.
        public var bucketedSeconds: Double
        /// The simulated backward alone, for reference.
        public var backwardSeconds: Double
        /// Backward, then one blocking all-reduce.
        public var blockingStepSeconds: Double
        /// Backward with buckets starting as their tensors finish, then `finish`.
        public var overlappedStepSeconds: Double

        public var bytes: Int { floatCount * MemoryLayout<Float>.stride }
        /// Payload bytes per second of one all-reduce (algorithm bandwidth), in GB/s.
        public func algorithmBandwidth(seconds: Double) -> Double { Double(bytes) / seconds / 1e9 }
        /// Bytes each rank moves in a ring all-reduce, 2(n-1)/n of the payload (NCCL's "bus bandwidth").
        public func busBandwidth(seconds: Double) -> Double {
            algorithmBandwidth(seconds: seconds) * 2 * Double(ranks - 1) / Double(max(ranks, 1))
        }

        public var description: String {
            func line(_ name: String, _ seconds: Double) -> String {
                String(format: "%@ %9.3f ms  %6.2f GB/s algbw  %6.2f GB/s busbw", name, seconds * 1e3,
                       algorithmBandwidth(seconds: seconds), busBandwidth(seconds: seconds))
            }
            let header = String(format: "all-reduce of %d floats (%.1f MB) on %d ranks, %d buckets of %d bytes",
                                floatCount, Double(bytes) / 1e6, ranks, bucketCount, bucketBytes)
            let steps = String(format: "step (backward %.3f ms + all-reduce): blocking %.3f ms, overlapped %.3f ms",
                               backwardSeconds * 1e3, blockingStepSeconds * 1e3, overlappedStepSeconds * 1e3)
            return [header, line("blocking  ", blockingSeconds), line("bucketed  ", bucketedSeconds), steps]
                .joined(separator: "\n")
        }
    }

    /// - Parameters:
    ///   - floatCount: gradient buffer length, split into `tensorCount` equal tensors.
    ///   - simulatedBackwardSeconds: busy time spread evenly over the tensors, standing in for backward.
    /// - Returns: per-operation times, each the median over `iterations` (after one warm-up) of the slowest rank.
    public static func run(communicator: Communicator, floatCount: Int, bucketBytes: Int = 4 << 20,
                           tensorCount: Int = 64, simulatedBackwardSeconds: Double = 0.02,
                           iterations: Int = 10) throws -> Result {
        guard floatCount > 0, tensorCount > 0, iterations > 0 else {
            throw DistError.invalidArgument(
                "benchmark needs positive floatCount (\(floatCount)), tensorCount (\(tensorCount)), iterations (\(iterations))")
        }
        let gradients = UnsafeMutablePointer<Float>.allocate(capacity: floatCount)
        defer { gradients.deallocate() }
        gradients.initialize(repeating: 1, count: floatCount)
        let tensorOffsets = (0..<tensorCount).map { $0 * floatCount / tensorCount }
        let overlapped = try GradientBucketer(communicator: communicator, gradients: gradients, count: floatCount,
                                              tensorOffsets: tensorOffsets, bucketBytes: bucketBytes, mode: .overlapped)
        let blocking = try GradientBucketer(communicator: communicator, gradients: gradients, count: floatCount,
                                            tensorOffsets: tensorOffsets, bucketBytes: bucketBytes, mode: .blocking)
        let scale = 1 / Float(communicator.size)
        let backwardPerTensor = simulatedBackwardSeconds / Double(tensorCount)

        var seconds = [Double](repeating: 0, count: iterations)
        /// Median over iterations of the slowest rank's seconds for `body`; the median shrugs off the
        /// stalls other processes cause on a shared machine.
        func time(_ body: () throws -> Void) throws -> Double {
            try body()
            for iteration in 0..<iterations {
                try communicator.barrier()
                let start = Communicator.wallTime()
                try body()
                seconds[iteration] = Communicator.wallTime() - start
            }
            try communicator.allReduceMax(&seconds)
            return seconds.sorted()[iterations / 2]
        }
        /// Tensor k (from the last) is done at start + (k+1) * backwardPerTensor: deadlines, not durations,
        /// so a preempted rank catches up instead of stretching the backward on a busy machine.
        func backward(_ bucketer: GradientBucketer?) throws {
            let start = Communicator.wallTime()
            for (k, offset) in tensorOffsets.reversed().enumerated() {
                spin(until: start + Double(k + 1) * backwardPerTensor)
                try bucketer?.gradientsReady(from: offset)
            }
        }

        return Result(
            ranks: communicator.size, floatCount: floatCount, bucketBytes: bucketBytes,
            bucketCount: overlapped.buckets.count,
            blockingSeconds: try time { try blocking.finish(scale: scale) },
            bucketedSeconds: try time { try overlapped.finish(scale: scale) },
            backwardSeconds: try time { try backward(nil) },
            blockingStepSeconds: try time { try backward(nil); try blocking.finish(scale: scale) },
            overlappedStepSeconds: try time { try backward(overlapped); try overlapped.finish(scale: scale) })
    }

    /// Busy-waits, as compute would: sleeping would hand the core to the other rank and flatter the overlap.
    private static func spin(until deadline: Double) {
        while Communicator.wallTime() < deadline {}
    }
}
