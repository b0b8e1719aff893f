import CMPI
import Foundation

/// Element types that map onto an MPI datatype, so one generic collective serves Float, Double, Int32, ...
public protocol MPIScalar: BitwiseCopyable {
    static var mpiDatatype: MPI_Datatype { get }
}

extension Float: MPIScalar { public static var mpiDatatype: MPI_Datatype { cmpi_float() } }
extension Double: MPIScalar { public static var mpiDatatype: MPI_Datatype { cmpi_double() } }
extension Int32: MPIScalar { public static var mpiDatatype: MPI_Datatype { cmpi_int32() } }
extension Int64: MPIScalar { public static var mpiDatatype: MPI_Datatype { cmpi_int64() } }
extension UInt8: MPIScalar { public static var mpiDatatype: MPI_Datatype { cmpi_uint8() } }

/// An MPI communicator: the world, or a sub-group made by `split` (e.g. one group per cross-validation fold).
///
/// Collectives must be called by every rank of the communicator in the same order with matching counts;
/// argument checks that throw on one rank only would leave the others waiting, so the checks here are
/// either local and rank-independent (negative counts) or made after exchanging what every rank needs.
/// Only the thread that called `initialize()` may use MPI (MPI_THREAD_FUNNELED).
public final class Communicator {
    /// The MPI handle, for calls Dist does not wrap.
    public let handle: MPI_Comm
    public let rank: Int
    public let size: Int
    /// Communicators from `split` are freed on deinit; the world is not ours to free.
    private let ownsHandle: Bool

    private init(handle: MPI_Comm, ownsHandle: Bool) throws {
        self.handle = handle
        self.ownsHandle = ownsHandle
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(handle, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
    }

    deinit {
        if ownsHandle && !Communicator.isFinalized {
            var comm: MPI_Comm? = handle
            MPI_Comm_free(&comm)
        }
    }

    // MARK: - Lifetime

    private static var worldCommunicator: Communicator?

    /// Initialises MPI with MPI_THREAD_FUNNELED (compute threads may exist, only this thread calls MPI).
    /// Without mpirun this is an MPI singleton of size 1. Calling it again is a no-op.
    ///
    /// Unless the environment already chooses one, this selects Rabenseifner's algorithm (reduce-scatter
    /// then all-gather) for MPI_Iallreduce: Open MPI 4.1's libnbc otherwise takes a binomial tree (reduce
    /// to rank 0, then broadcast) whenever there are fewer than 4 ranks or the buffer is in place, which
    /// is always the case for GradientBucketer; on 2 ranks and 44 MB that made the bucketed all-reduce
    /// about 2x slower than one blocking MPI_Allreduce, and Rabenseifner's about 1.6x faster.
    public static func initialize() throws {
        if worldCommunicator != nil { return }
        var initialized: Int32 = 0
        try check(MPI_Initialized(&initialized), "MPI_Initialized")
        if initialized == 0 {
            setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0)
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
            guard provided >= cmpi_thread_funneled() else {
                throw DistError.mpi(function: "MPI_Init_thread", code: provided,
                                    message: "library provides thread level \(provided), below MPI_THREAD_FUNNELED")
            }
        }
        // Return codes instead of the default abort-on-error, so failures become Swift errors.
        try check(MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return()), "MPI_Comm_set_errhandler")
        worldCommunicator = try Communicator(handle: cmpi_comm_world(), ownsHandle: false)
    }

    /// MPI_COMM_WORLD. Using it before `initialize()` is a programming error and stops the process.
    public static var world: Communicator {
        guard let world = worldCommunicator else { fatalError("Communicator.world used before Communicator.initialize()") }
        return world
    }

    public static var isFinalized: Bool {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        return finalized != 0
    }

    /// Shuts MPI down; every rank must call it after its last collective. Calling it again is a no-op.
    public static func finalize() throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        guard initialized != 0, !isFinalized else { return }
        worldCommunicator = nil
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    /// Kills every rank of this communicator (mpirun then exits with `code`): for a rank that cannot
    /// continue while the others wait in a collective.
    public func abort(code: Int32) -> Never {
        MPI_Abort(handle, code)
        exit(code)
    }

    /// Seconds since an arbitrary origin, from MPI's high-resolution clock.
    public static func wallTime() -> Double { MPI_Wtime() }

    // MARK: - Synchronisation and broadcast

    public func barrier() throws {
        try check(MPI_Barrier(handle), "MPI_Barrier")
    }

    /// Overwrites `buffer[0..<count]` on every rank with root's values (count must match on all ranks).
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int, root: Int = 0) throws {
        try broadcastRaw(UnsafeMutableRawPointer(buffer), count: count, type: T.self, root: root)
    }

    /// Replaces `array` on every rank with root's array; the other ranks need not know its length.
    public func broadcast<T: MPIScalar>(_ array: inout [T], root: Int = 0) throws {
        let count = try broadcast(array.count, root: root)
        if rank == root {
            try array.withUnsafeMutableBufferPointer {
                try broadcastRaw($0.baseAddress.map(UnsafeMutableRawPointer.init), count: count, type: T.self, root: root)
            }
        } else {
            array = try [T](unsafeUninitializedCapacity: count) { receive, initialized in
                try broadcastRaw(receive.baseAddress.map(UnsafeMutableRawPointer.init), count: count, type: T.self, root: root)
                initialized = count
            }
        }
    }

    /// Root's `value`, on every rank.
    public func broadcast(_ value: Int, root: Int = 0) throws -> Int {
        var wide = Int64(value)
        try broadcastRaw(&wide, count: 1, type: Int64.self, root: root)
        return Int(wide)
    }

    private func broadcastRaw<T: MPIScalar>(_ buffer: UnsafeMutableRawPointer?, count: Int, type: T.Type, root: Int) throws {
        try checkRoot(root)
        try check(MPI_Bcast(buffer, mpiCount(count, "broadcast count"), T.mpiDatatype, Int32(root), handle), "MPI_Bcast")
    }

    // MARK: - All-reduce

    /// Sums `buffer[0..<count]` element-wise over all ranks, in place; every rank gets the sum.
    public func allReduceSum<T: MPIScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        try allReduce(UnsafeMutableRawPointer(buffer), count: count, type: T.self, op: cmpi_op_sum())
    }

    public func allReduceSum<T: MPIScalar>(_ array: inout [T]) throws {
        try array.withUnsafeMutableBufferPointer {
            try allReduce($0.baseAddress.map(UnsafeMutableRawPointer.init), count: $0.count, type: T.self, op: cmpi_op_sum())
        }
    }

    public func allReduceSum<T: MPIScalar>(_ value: T) throws -> T {
        var value = value
        try allReduce(&value, count: 1, type: T.self, op: cmpi_op_sum())
        return value
    }

    /// The largest `value` over all ranks (e.g. the slowest rank's step time).
    public func allReduceMax<T: MPIScalar>(_ value: T) throws -> T {
        var value = value
        try allReduce(&value, count: 1, type: T.self, op: cmpi_op_max())
        return value
    }

    /// Element-wise maximum over all ranks, in place.
    public func allReduceMax<T: MPIScalar>(_ array: inout [T]) throws {
        try array.withUnsafeMutableBufferPointer {
            try allReduce($0.baseAddress.map(UnsafeMutableRawPointer.init), count: $0.count, type: T.self, op: cmpi_op_max())
        }
    }

    private func allReduce<T: MPIScalar>(_ buffer: UnsafeMutableRawPointer?, count: Int, type: T.Type, op: MPI_Op) throws {
        try check(MPI_Allreduce(cmpi_in_place(), buffer, mpiCount(count, "all-reduce count"), T.mpiDatatype, op, handle),
                  "MPI_Allreduce")
    }

    /// Starts an in-place sum over all ranks and returns at once. `buffer` must stay allocated and untouched
    /// until the request completes; Open MPI advances the reduction only inside MPI calls, so call
    /// `Request.test()` now and then while computing.
    public func iAllReduceSum<T: MPIScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws -> Request {
        let request = Request()
        try startAllReduceSum(UnsafeMutableRawPointer(buffer), count: count, type: T.self, request: &request.handle)
        return request
    }

    /// MPI_Iallreduce writing its handle into caller-owned storage (GradientBucketer keeps them in one array).
    func startAllReduceSum<T: MPIScalar>(_ buffer: UnsafeMutableRawPointer?, count: Int, type: T.Type,
                                         request: UnsafeMutablePointer<MPI_Request?>) throws {
        try check(MPI_Iallreduce(cmpi_in_place(), buffer, mpiCount(count, "all-reduce count"), T.mpiDatatype,
                                 cmpi_op_sum(), handle, request), "MPI_Iallreduce")
    }

    // MARK: - Gather

    /// One value per rank, in rank order, on `root`; an empty array elsewhere.
    public func gather<T: MPIScalar>(_ value: T, root: Int = 0) throws -> [T] {
        try checkRoot(root)
        var value = value
        let count = rank == root ? size : 0
        return try [T](unsafeUninitializedCapacity: count) { receive, initialized in
            try check(MPI_Gather(&value, 1, T.mpiDatatype, receive.baseAddress, 1, T.mpiDatatype, Int32(root), handle),
                      "MPI_Gather")
            initialized = count
        }
    }

    /// Every rank's host name (the kernel's, no DNS lookup), indexed by rank, on `root`; empty elsewhere.
    public func hostNames(root: Int = 0) throws -> [String] {
        var name = [CChar](repeating: 0, count: 256)
        let local = gethostname(&name, name.count) == 0 ? String(cString: name) : "?"
        return try gatherv(Array(local.utf8), root: root).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every rank's array (lengths may differ, including zero), indexed by rank, on `root`; empty elsewhere.
    public func gatherv<T: MPIScalar>(_ values: [T], root: Int = 0) throws -> [[T]] {
        try checkRoot(root)
        // Every rank learns every count, so an oversized total fails on all ranks alike instead of hanging.
        var counts = [Int32](repeating: 0, count: size)
        var localCount = try mpiCount(values.count, "gatherv count")
        try check(MPI_Allgather(&localCount, 1, cmpi_int32(), &counts, 1, cmpi_int32(), handle), "MPI_Allgather")
        let total = try mpiCount(counts.reduce(0) { $0 + Int($1) }, "gatherv total count")
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + counts[r - 1] }

        let isRoot = rank == root
        let receiveCount = isRoot ? Int(total) : 0
        let gathered = try values.withUnsafeBufferPointer { send in
            try [T](unsafeUninitializedCapacity: receiveCount) { receive, initialized in
                try check(MPI_Gatherv(send.baseAddress, localCount, T.mpiDatatype, receive.baseAddress, &counts,
                                      &displacements, T.mpiDatatype, Int32(root), handle), "MPI_Gatherv")
                initialized = receiveCount
            }
        }
        guard isRoot else { return [] }
        return (0..<size).map { r in
            let start = Int(displacements[r])
            return Array(gathered[start..<start + Int(counts[r])])
        }
    }

    // MARK: - Split

    /// Ranks passing the same `color` (>= 0) form one new communicator, ordered by `key` then old rank.
    public func split(color: Int, key: Int) throws -> Communicator {
        guard color >= 0, color <= Int(Int32.max) else {
            throw DistError.invalidArgument("split color = \(color) must be in 0...\(Int32.max)")
        }
        guard let key32 = Int32(exactly: key) else {
            throw DistError.invalidArgument("split key = \(key) does not fit in 32 bits")
        }
        var newHandle: MPI_Comm? = cmpi_comm_null()
        try check(MPI_Comm_split(handle, Int32(color), key32, &newHandle), "MPI_Comm_split")
        guard let newHandle, newHandle != cmpi_comm_null() else {
            throw DistError.mpi(function: "MPI_Comm_split", code: 0, message: "returned MPI_COMM_NULL for color \(color)")
        }
        return try Communicator(handle: newHandle, ownsHandle: true)
    }

    private func checkRoot(_ root: Int) throws {
        guard root >= 0, root < size else { throw DistError.invalidArgument("root = \(root) is outside 0..<\(size) ranks") }
    }
}

/// A pending non-blocking operation (from `iAllReduceSum`). Complete it (wait, waitAll or a true
/// test) before dropping it: MPI has no way to cancel a collective.
public final class Request {
    var handle: MPI_Request? = cmpi_request_null()

    init() {}

    public var isComplete: Bool { handle == cmpi_request_null() }

    /// Blocks until the operation is done; afterwards the buffer holds the result.
    public func wait() throws {
        try check(MPI_Wait(&handle, cmpi_status_ignore()), "MPI_Wait")
    }

    /// Advances MPI's progress engine and reports whether the operation is done.
    @discardableResult
    public func test() throws -> Bool {
        var done: Int32 = 0
        try check(MPI_Test(&handle, &done, cmpi_status_ignore()), "MPI_Test")
        return done != 0
    }

    public static func waitAll(_ requests: [Request]) throws {
        var handles = requests.map(\.handle)
        defer { for (request, handle) in zip(requests, handles) { request.handle = handle } }
        try check(MPI_Waitall(Int32(handles.count), &handles, cmpi_statuses_ignore()), "MPI_Waitall")
    }
}
