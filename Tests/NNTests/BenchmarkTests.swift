import Foundation
import XCTest
import NN

/// Runs the training benchmark only when asked (it is a measurement, not a test):
///   NN_BENCH=resnet18:16:32,resnet50:64:32 NN_BENCH_THREADS=2 NN_BENCH_STEPS=5 \
///     swift test -c release -Xswiftc -enable-testing --filter BenchmarkTests
final class BenchmarkTests: XCTestCase {
    func testTrainBenchmark() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let specification = environment["NN_BENCH"] else { throw XCTSkip("set NN_BENCH to run the benchmark") }
        let threads = Int(environment["NN_BENCH_THREADS"] ?? "") ?? 2
        let steps = Int(environment["NN_BENCH_STEPS"] ?? "") ?? 5
        print(String(format: "sgemm 2048² peak on %d threads: %.1f GFLOP/s", threads, try TrainBenchmark.gemmPeak(threads: threads)))
        for configuration in specification.split(separator: ",") {
            let fields = configuration.split(separator: ":").map(String.init)
            let result = try TrainBenchmark.run(arch: try Architecture(parsing: fields[0]), width: Int(fields[1])!,
                                                batch: Int(fields[2])!, threads: threads, steps: steps)
            print(result)
        }
    }
}
