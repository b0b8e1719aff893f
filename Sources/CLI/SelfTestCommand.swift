import ArgumentParser
import Datasets
import Dist
import Foundation

/// `digits-dist selftest …`: MPI diagnostics, hidden from help because they only make sense under
/// mpirun; Tests/IntegrationTests/MPITests.swift runs them with 1–4 ranks.
///
///     mpirun --allow-run-as-root --oversubscribe -n 4 digits-dist selftest collectives
///     mpirun --allow-run-as-root --oversubscribe -n 2 digits-dist selftest die --rank 1
struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "MPI self-tests; run under mpirun.",
        shouldDisplay: false,
        subcommands: [Collectives.self, Die.self])
}

extension SelfTestCommand {
    /// Checks every collective against the serial answer, computed locally: each rank's data comes from
    /// a generator seeded by its rank, so any rank can regenerate everyone's data. Values are multiples
    /// of 1/8 small enough that every sum is exact, so results must match bit for bit whatever order
    /// MPI reduces in. Rank 0 prints one line per check; the exit status is non-zero on any mismatch.
    struct Collectives: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check all-reduce, iallreduce, GradientBucketer, broadcast, gather(v) and split against serial sums.")

        func run() throws {
            try Communicator.initialize()
            let checker = CollectiveChecker(world: Communicator.world)
            try checker.runAll()
            let failures = checker.failures
            if checker.world.rank == 0 {
                print(failures == 0
                      ? "selftest collectives: all \(checker.checkCount) checks passed on \(checker.world.size) ranks"
                      : "selftest collectives: \(failures) of \(checker.checkCount) checks FAILED on \(checker.world.size) ranks")
            }
            try Communicator.finalize()
            if failures > 0 { throw ExitCode(1) }
        }
    }

    /// Stands in for a crashed worker: all ranks loop over all-reduces and `--rank` SIGKILLs itself
    /// mid-loop, so the others are blocked in a collective. mpirun must then end the job, not hang.
    struct Die: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One rank SIGKILLs itself during all-reduces.")

        @Option(help: "The rank that kills itself.") var rank = 1
        @Option(help: "All-reduces completed before it does.") var after = 3

        func run() throws {
            try Communicator.initialize()
            let world = Communicator.world
            guard (0..<world.size).contains(rank) else {
                throw ValidationError("--rank \(rank) is outside 0..<\(world.size) ranks")
            }
            // The test checks that every one of these processes is gone after mpirun returns.
            print("rank \(world.rank) pid \(getpid())")
            fflush(stdout)
            var buffer = [Float](repeating: 1, count: 1 << 16)
            for iteration in 0..<10_000 {
                if world.rank == rank && iteration == after {
                    print("rank \(rank) raising SIGKILL after \(after) all-reduces")
                    fflush(stdout)
                    raise(SIGKILL)
                }
                try world.allReduceSum(&buffer)
                buffer.withUnsafeMutableBufferPointer { $0.update(repeating: 1) }
            }
            try Communicator.finalize()
        }
    }
}

/// The checks of `selftest collectives`. Every rank runs every check (collectives need all ranks);
/// a check passes when it passed on all ranks.
final class CollectiveChecker {
    let world: Communicator
    private(set) var checkCount = 0
    private(set) var failures = 0

    init(world: Communicator) { self.world = world }

    func runAll() throws {
        try checkRanks()
        for count in [0, 1, 7, 1000, 1_048_583] {
            try checkAllReduceSum(Float.self, count: count)
        }
        for count in [0, 1, 7, 1000] {
            try checkAllReduceSum(Double.self, count: count)
            try checkAllReduceSum(Int64.self, count: count)
        }
        try checkScalarReductions()
        try checkIAllReduce()
        for mode in GradientBucketer.Mode.allCases {
            for bucketBytes in [1, 4096, 64 << 10, 4 << 20, Int.max] {
                try checkBucketer(mode: mode, count: 100_003, tensorCount: 40, bucketBytes: bucketBytes)
            }
            try checkBucketer(mode: mode, count: 0, tensorCount: 0, bucketBytes: 4096)
            try checkBucketer(mode: mode, count: 1, tensorCount: 1, bucketBytes: 4096)
        }
        try checkBucketerRejectsDifferingLayouts()
        try checkBroadcast()
        try checkGather()
        try checkSplit()
    }

    /// Records one check: rank 0 prints it with the number of ranks on which it failed.
    private func report(_ name: String, _ passedHere: Bool) throws {
        let failedRanks = try world.allReduceSum(Int64(passedHere ? 0 : 1))
        checkCount += 1
        if failedRanks > 0 { failures += 1 }
        if world.rank == 0 {
            print(failedRanks == 0 ? "ok   \(name)" : "FAIL \(name) (wrong on \(failedRanks) of \(world.size) ranks)")
            fflush(stdout)
        }
    }

    // MARK: - Data

    /// Rank `rank`'s deterministic data for a check: exact multiples of 1/8 in [-128, 128).
    private func data<T: ExactTestValue>(_: T.Type, count: Int, rank: Int, salt: UInt64) -> [T] {
        var generator = SplitMix64(seed: UInt64(rank) &* 0x9E37_79B9 &+ salt &* 0x1_0000_0001 &+ UInt64(count))
        return (0..<count).map { _ in T(eighths: Int64(generator.next() % 2048) - 1024) }
    }

    /// What an all-rank sum of `data(...)` must be, summed serially in rank order.
    private func serialSum<T: ExactTestValue>(_: T.Type, count: Int, salt: UInt64, ranks: [Int]) -> [T] {
        var sum = [T](repeating: T(eighths: 0), count: count)
        for rank in ranks {
            for (i, value) in data(T.self, count: count, rank: rank, salt: salt).enumerated() { sum[i] = sum[i] + value }
        }
        return sum
    }

    // MARK: - Checks

    private func checkRanks() throws {
        let ranks = try world.gather(Int32(world.rank))
        let expectedSize = Launcher(environment: ProcessInfo.processInfo.environment).worldSize
        try report("rank/size: \(world.size) ranks, gather of ranks in order",
                   world.size == expectedSize && (world.rank != 0 || ranks == (0..<world.size).map(Int32.init)))
        try world.barrier()
        try report("barrier", true)
    }

    private func checkAllReduceSum<T: ExactTestValue>(_ type: T.Type, count: Int) throws {
        var buffer = data(T.self, count: count, rank: world.rank, salt: 1)
        try world.allReduceSum(&buffer)
        try report("allReduceSum \(T.self) count=\(count)",
                   buffer == serialSum(T.self, count: count, salt: 1, ranks: Array(0..<world.size)))
    }

    private func checkScalarReductions() throws {
        // Above 2^53 per rank: catches a 64-bit sum travelling through Double or Int32.
        let big = Int64(1) << 54 + Int64(world.rank)
        let bigSum = (0..<world.size).reduce(Int64(0)) { $0 + (Int64(1) << 54 + Int64($1)) }
        try report("allReduceSum Int64 scalar above 2^53", try world.allReduceSum(big) == bigSum)
        try report("allReduceMax Double scalar", try world.allReduceMax(Double(world.rank) * 1.5) == Double(world.size - 1) * 1.5)
        var maxima = data(Double.self, count: 1000, rank: world.rank, salt: 2)
        try world.allReduceMax(&maxima)
        let serialMaxima = (1..<world.size).reduce(data(Double.self, count: 1000, rank: 0, salt: 2)) { maxima, rank in
            zip(maxima, data(Double.self, count: 1000, rank: rank, salt: 2)).map { max($0, $1) }
        }
        try report("allReduceMax Double count=1000", maxima == serialMaxima)
    }

    /// Several reductions in flight at once, completed by waitAll, by wait and by polling test().
    private func checkIAllReduce() throws {
        let counts = [1, 7, 100_003, 0]
        var buffers = counts.enumerated().map { data(Float.self, count: $1, rank: world.rank, salt: 10 + UInt64($0)) }
        let pointers = buffers.indices.map { i in
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(counts[i], 1))
            pointer.initialize(from: buffers[i], count: counts[i])
            return pointer
        }
        defer { pointers.forEach { $0.deallocate() } }
        let requests = try counts.indices.map { try world.iAllReduceSum(pointers[$0], count: counts[$0]) }
        while try !requests[0].test() {}
        try requests[1].wait()
        try Request.waitAll(Array(requests[2...]))
        var correct = requests.allSatisfy(\.isComplete)
        for i in counts.indices {
            buffers[i] = Array(UnsafeBufferPointer(start: pointers[i], count: counts[i]))
            correct = correct && buffers[i] == serialSum(Float.self, count: counts[i], salt: 10 + UInt64(i),
                                                          ranks: Array(0..<world.size))
        }
        try report("iAllReduceSum Float counts=\(counts) via test, wait, waitAll", correct)
    }

    /// Simulates two training steps of backward: tensors finish last to first (with rank-dependent
    /// pauses so ranks start buckets at different times), each reporting its start offset as ready.
    private func checkBucketer(mode: GradientBucketer.Mode, count: Int, tensorCount: Int, bucketBytes: Int) throws {
        // The same random layout on every rank (seeded by the check, not the rank); offset 0 always first.
        var layout = SplitMix64(seed: UInt64(count) &+ UInt64(bucketBytes))
        let tensorOffsets = tensorCount == 0 ? [] :
            ([0] + (1..<tensorCount).map { _ in Int(layout.next() % UInt64(max(count, 1))) }).sorted()
        let gradients = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        defer { gradients.deallocate() }
        let bucketer = try GradientBucketer(communicator: world, gradients: gradients, count: count,
                                            tensorOffsets: tensorOffsets, bucketBytes: bucketBytes, mode: mode)
        let scale = 1 / Float(world.size)
        var correct = true
        for step in 0..<2 {
            let salt = 100 + UInt64(step)
            gradients.initialize(from: data(Float.self, count: count, rank: world.rank, salt: salt), count: count)
            for (index, offset) in tensorOffsets.enumerated().reversed() {
                if (index + world.rank) % 7 == 0 { usleep(200) }
                try bucketer.gradientsReady(from: offset)
            }
            try bucketer.finish(scale: scale)
            let expected = serialSum(Float.self, count: count, salt: salt, ranks: Array(0..<world.size)).map { $0 * scale }
            correct = correct && Array(UnsafeBufferPointer(start: gradients, count: count)) == expected
        }
        try report("GradientBucketer \(mode) count=\(count) bucketBytes=\(bucketBytes) buckets=\(bucketer.buckets.count), 2 steps",
                   correct)
    }

    /// Ranks disagreeing on the bucket size must all get an error instead of mismatched reductions.
    private func checkBucketerRejectsDifferingLayouts() throws {
        let gradients = UnsafeMutablePointer<Float>.allocate(capacity: 1000)
        defer { gradients.deallocate() }
        var rejected = false
        do {
            _ = try GradientBucketer(communicator: world, gradients: gradients, count: 1000,
                                     tensorOffsets: [0, 100, 500], bucketBytes: world.rank == world.size - 1 ? 4 : 4096)
        } catch DistError.invalidArgument(let message) {
            rejected = message.contains("differs between ranks")
        }
        try report("GradientBucketer rejects layouts differing between ranks on every rank", rejected == (world.size > 1))
    }

    private func checkBroadcast() throws {
        for root in Set([0, world.size - 1]).sorted() {
            var floats = data(Float.self, count: 1001, rank: world.rank, salt: 20)
            try floats.withUnsafeMutableBufferPointer { try world.broadcast($0.baseAddress!, count: $0.count, root: root) }
            try report("broadcast Float buffer count=1001 root=\(root)", floats == data(Float.self, count: 1001, rank: root, salt: 20))

            // Only the root knows the length: the others start with arrays of other lengths.
            var bytes = [UInt8](repeating: UInt8(world.rank), count: world.rank == root ? 77 : world.rank)
            if world.rank == root { bytes = (0..<77).map { UInt8($0 * 3 % 256) } }
            try world.broadcast(&bytes, root: root)
            try report("broadcast [UInt8] count=77 root=\(root)", bytes == (0..<77).map { UInt8($0 * 3 % 256) })

            var empty = [UInt8](repeating: 1, count: world.rank == root ? 0 : 5)
            try world.broadcast(&empty, root: root)
            try report("broadcast [UInt8] count=0 root=\(root)", empty.isEmpty)

            let value = try world.broadcast(world.rank == root ? -1234567890123 : world.rank, root: root)
            try report("broadcast Int root=\(root)", value == -1234567890123)
        }
    }

    /// Rank r contributes r*3 elements (rank 0 none), so counts differ and one is zero.
    private func checkGather() throws {
        func check<T: ExactTestValue>(_ type: T.Type, root: Int) throws {
            let gathered = try world.gatherv(data(T.self, count: world.rank * 3, rank: world.rank, salt: 30), root: root)
            let expected = world.rank == root ? (0..<world.size).map { data(T.self, count: $0 * 3, rank: $0, salt: 30) } : []
            try report("gatherv \(T.self) counts=rank*3 root=\(root)", gathered == expected)
        }
        for root in Set([0, world.size - 1]).sorted() {
            try check(Float.self, root: root)
            try check(Int32.self, root: root)
            try check(Int64.self, root: root)
        }
        let squares = try world.gather(Int64(world.rank * world.rank))
        try report("gather Int64 scalar", squares == (world.rank == 0 ? (0..<world.size).map { Int64($0 * $0) } : []))
    }

    /// Fold-style groups: color = rank % 2, key = -rank, so each group's ranks come in reverse order.
    private func checkSplit() throws {
        let color = world.rank % 2
        let group = try world.split(color: color, key: -world.rank)
        let members = (0..<world.size).filter { $0 % 2 == color }
        let expectedRank = members.count - 1 - members.firstIndex(of: world.rank)!
        var sums = data(Float.self, count: 513, rank: world.rank, salt: 40)
        try group.allReduceSum(&sums)
        try report("split color=rank%2 key=-rank: group size, rank and all-reduce within group",
                   group.size == members.count && group.rank == expectedRank
                   && sums == serialSum(Float.self, count: 513, salt: 40, ranks: members))
    }
}

/// Test element types built from exact eighths (sums of a few thousand of them are exact in Float).
protocol ExactTestValue: MPIScalar, Equatable {
    init(eighths: Int64)
    static func + (lhs: Self, rhs: Self) -> Self
}

extension Float: ExactTestValue { init(eighths: Int64) { self = Float(eighths) / 8 } }
extension Double: ExactTestValue { init(eighths: Int64) { self = Double(eighths) / 8 } }
extension Int32: ExactTestValue { init(eighths: Int64) { self = Int32(eighths) } }
extension Int64: ExactTestValue { init(eighths: Int64) { self = eighths << 20 } }

