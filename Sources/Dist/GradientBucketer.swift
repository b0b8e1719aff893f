import CMPI
import Foundation

/// Sums a flat gradient buffer over all ranks while backward is still running (the core of DDP).
///
/// Backward produces the last parameter tensors' gradients first, so the buffer is cut into buckets
/// from the end: `buckets[0]` holds the last tensors. As soon as backward reports that everything from
/// some offset to the end is final (`gradientsReady(from:)`), each bucket lying wholly in that tail
/// starts an in-place MPI_Iallreduce, overlapping communication with the rest of backward. Buckets
/// always start in the same order on every rank, which MPI requires of collectives on one communicator.
///
/// Per step: backward calls `gradientsReady(from:)` after each layer (each call also advances MPI,
/// which Open MPI needs to make progress), then `finish(scale:)` waits and averages. The gradients
/// of a started bucket must not be written until `finish` returns. All state is allocated in `init`.
/// Every rank must create its bucketer with the same count, tensor offsets and bucket size; `init`
/// checks that all ranks cut the same buckets (mismatched reductions would hang or mix up gradients).
///
/// `.blocking` mode ignores `gradientsReady` and does one MPI_Allreduce over the whole buffer in
/// `finish`, the baseline the overlap is measured against.
public final class GradientBucketer {
    public enum Mode: String, CaseIterable, Sendable {
        case overlapped, blocking
    }

    public let communicator: Communicator
    public let gradients: UnsafeMutablePointer<Float>
    public let count: Int
    public let mode: Mode
    /// Bucket element ranges in launch order (descending offsets), covering 0..<count without gaps.
    public let buckets: [Range<Int>]

    /// One MPI request per bucket; a slot is MPI_REQUEST_NULL once its reduction completed (or before it started).
    private let requests: UnsafeMutablePointer<MPI_Request?>
    /// Buckets 0..<startedBucketCount have been started this step.
    private var startedBucketCount = 0
    /// Whether each `gradientsReady` call also advances the started reductions. Off, they move only when
    /// `finish` waits for them (over TCP, nearly all of their time is then exposed): `bench allreduce` shows
    /// the difference.
    public var drivesProgress = true

    /// - Parameters:
    ///   - gradients: `count` floats, reduced in place; must outlive the bucketer.
    ///   - tensorOffsets: ascending start offsets of the parameter tensors in `gradients`; buckets are cut
    ///     only at these offsets (a tensor is never split between two reductions).
    ///   - bucketBytes: a bucket is closed once it holds at least this many bytes (e.g. 4 MB); a single
    ///     tensor larger than that gets a bucket of its own.
    public init(communicator: Communicator, gradients: UnsafeMutablePointer<Float>, count: Int,
                tensorOffsets: [Int], bucketBytes: Int, mode: Mode = .overlapped) throws {
        self.buckets = try GradientBucketer.partition(count: count, tensorOffsets: tensorOffsets, bucketBytes: bucketBytes)
        if mode == .blocking { _ = try mpiCount(count, "gradient count for a blocking all-reduce") }
        try GradientBucketer.checkSameLayoutOnAllRanks(buckets, count: count, mode: mode, communicator: communicator)
        self.communicator = communicator
        self.gradients = gradients
        self.count = count
        self.mode = mode
        self.requests = .allocate(capacity: max(buckets.count, 1))
        self.requests.initialize(repeating: cmpi_request_null(), count: max(buckets.count, 1))
    }

    deinit {
        requests.deallocate()
    }

    /// The bucket size training uses unless told otherwise: the gradient cut into about 8 buckets, each
    /// 0.25–25 MB. Several buckets let the first ones travel while backward still computes the rest (one
    /// bucket holding the whole gradient starts only when backward ends, and over a 1 Gbit/s link its whole
    /// transfer is then exposed); 25 MB is PyTorch DDP's bucket cap.
    public static func automaticBucketBytes(count: Int) -> Int {
        min(25 << 20, max(256 << 10, count * MemoryLayout<Float>.stride / 8))
    }

    /// Cuts 0..<count into buckets walking the tensors from the last one, closing a bucket once it
    /// reaches `bucketBytes`; the first tensors form the final, possibly smaller, bucket.
    public static func partition(count: Int, tensorOffsets: [Int], bucketBytes: Int) throws -> [Range<Int>] {
        guard count >= 0 else { throw DistError.invalidArgument("gradient count = \(count) is negative") }
        guard bucketBytes > 0 else { throw DistError.invalidArgument("bucketBytes = \(bucketBytes) must be positive") }
        var previous = 0
        for (index, offset) in tensorOffsets.enumerated() {
            guard offset >= previous, offset <= count else {
                throw DistError.invalidArgument(
                    "tensorOffsets[\(index)] = \(offset) must be ascending and within 0...\(count)")
            }
            previous = offset
        }
        let bytesPerElement = MemoryLayout<Float>.stride
        // Rounded up without forming bucketBytes + 3, which overflows for "no limit" (Int.max).
        let capacity = bucketBytes / bytesPerElement + (bucketBytes % bytesPerElement == 0 ? 0 : 1)
        var buckets: [Range<Int>] = []
        var bucketEnd = count
        for tensorStart in tensorOffsets.reversed() + [0] where tensorStart < bucketEnd {
            if bucketEnd - tensorStart >= capacity {
                buckets.append(tensorStart..<bucketEnd)
                bucketEnd = tensorStart
            }
        }
        if bucketEnd > 0 { buckets.append(0..<bucketEnd) }
        for bucket in buckets { _ = try mpiCount(bucket.count, "bucket \(bucket) element count") }
        return buckets
    }

    /// Compares a fingerprint of the layout across ranks with one all-reduce (max of it and of its
    /// complement gives max and min), so every rank sees the same verdict and throws together.
    private static func checkSameLayoutOnAllRanks(_ buckets: [Range<Int>], count: Int, mode: Mode,
                                                  communicator: Communicator) throws {
        var fingerprint: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: deterministic across processes, unlike Hasher
        for value in [count, mode == .overlapped ? 1 : 0] + buckets.map(\.lowerBound) {
            fingerprint = (fingerprint ^ UInt64(truncatingIfNeeded: value)) &* 0x100_0000_01b3
        }
        let local = Int64(bitPattern: fingerprint)
        var extremes = [local, ~local]
        try communicator.allReduceMax(&extremes)
        guard extremes[0] == ~extremes[1] else {
            throw DistError.invalidArgument(
                "GradientBucketer layout (count, mode, bucket boundaries) differs between ranks; rank \(communicator.rank) has count \(count), \(buckets.count) buckets")
        }
    }

    /// Backward has finished every gradient in `offset..<count`: start the buckets lying wholly inside it.
    public func gradientsReady(from offset: Int) throws {
        guard offset >= 0, offset <= count else {
            throw DistError.invalidArgument("ready offset = \(offset) is outside 0...\(count)")
        }
        guard mode == .overlapped else { return }
        while startedBucketCount < buckets.count, buckets[startedBucketCount].lowerBound >= offset {
            let bucket = buckets[startedBucketCount]
            try communicator.startAllReduceSum(gradients + bucket.lowerBound, count: bucket.count, type: Float.self,
                                               request: requests + startedBucketCount)
            startedBucketCount += 1
        }
        if drivesProgress { try progress() }
    }

    /// Lets Open MPI advance the started reductions (it progresses non-blocking collectives only inside MPI calls).
    public func progress() throws {
        guard startedBucketCount > 0 else { return }
        var allDone: Int32 = 0
        try check(MPI_Testall(Int32(startedBucketCount), requests, &allDone, cmpi_statuses_ignore()), "MPI_Testall")
    }

    /// Completes the all-reduce of the whole buffer and multiplies it by `scale` (1/ranks for a mean);
    /// the bucketer is then ready for the next step.
    public func finish(scale: Float) throws {
        switch mode {
        case .overlapped:
            try gradientsReady(from: 0)
            try check(MPI_Waitall(Int32(startedBucketCount), requests, cmpi_statuses_ignore()), "MPI_Waitall")
            startedBucketCount = 0
        case .blocking:
            try communicator.allReduceSum(gradients, count: count)
        }
        if scale != 1 {
            for i in 0..<count { gradients[i] *= scale }
        }
    }
}
