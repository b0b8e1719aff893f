import CBF16
import CBLAS
import Foundation
import Synchronization

/// One named tensor inside a flat buffer (parameters, gradients or BN statistics). Parameters and
/// gradients share the same layout, so a slot's `range` addresses both; checkpoints and all-reduce
/// buckets are built from these.
public struct TensorSlot: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// What the engine spends its time on; the benchmark reports one line per kind.
public enum LayerKind: Int, CaseIterable, Sendable {
    case gemm, im2col, convolutionPerSample, winograd, batchNorm, residual, pooling, dropout, linear, loss, optimizer

    public var label: String {
        switch self {
        case .gemm: return "conv gemm"
        case .im2col: return "im2col"
        case .convolutionPerSample: return "conv per sample"
        case .winograd: return "conv winograd"
        case .batchNorm: return "batchnorm+relu"
        case .residual: return "residual+relu"
        case .pooling: return "pooling"
        case .dropout: return "dropout"
        case .linear: return "linear"
        case .loss: return "loss"
        case .optimizer: return "optimizer"
        }
    }
}

/// Shared state of one network: the three flat buffers, the scratch for col2im, the hooks that let a
/// distributed trainer reach into backward, and an optional profiler.
///
/// Layers reserve their tensors while the network is built; `allocate()` then creates every buffer
/// once, so a whole model's parameters are one block of memory and its gradients a second block with
/// the same layout — what an in-place bucketed all-reduce needs.
final class NetworkContext {
    private(set) var parameterSlots: [TensorSlot] = []
    private(set) var bufferSlots: [TensorSlot] = []
    private(set) var parameterCount = 0
    private(set) var bufferCount = 0
    private(set) var workspaceCount = 0
    private(set) var sampleWeightGradientCount = 0
    private(set) var sampleScratchCount = 0
    private var sampleScratch: UnsafeMutablePointer<Float>?
    private var sampleScratchThreads = 0

    private(set) var parameters: UnsafeMutablePointer<Float>!
    private(set) var gradients: UnsafeMutablePointer<Float>!
    private(set) var buffers: UnsafeMutablePointer<Float>!
    /// The column gradient of the wide convolutions, shared: they run one at a time (thin ones work in
    /// `sampleScratch`).
    private(set) var workspace: UnsafeMutablePointer<Float>!
    /// Weight-gradient partials, one per sample (or per Winograd group of samples) of the convolutions that
    /// run sample by sample, summed in order afterwards.
    private(set) var sampleWeightGradients: UnsafeMutablePointer<Float>!

    /// Called by backward each time a layer has finished its parameter gradients, with that layer's
    /// range in the gradient buffer. Ranges arrive in strictly decreasing order and tile the buffer.
    var gradientsReady: ((Range<Int>) -> Void)?
    /// The arithmetic of every matrix product of the network.
    var precision = Precision.fp32
    /// In-place sum over ranks of a BatchNorm reduction vector; nil means purely local statistics.
    var batchNormReduce: ((UnsafeMutablePointer<Double>, Int) -> Void)?
    /// Accumulated seconds per layer kind; nil (the default) costs nothing.
    var profile: UnsafeMutablePointer<Double>?
    /// Names of the convolutions in build order, and while profiling their forward and backward seconds
    /// ([2·index] forward, [2·index + 1] backward).
    private(set) var convolutionNames: [String] = []
    private(set) var convolutionProfile: UnsafeMutablePointer<Double>?

    deinit {
        parameters?.deallocate()
        gradients?.deallocate()
        buffers?.deallocate()
        workspace?.deallocate()
        sampleWeightGradients?.deallocate()
        sampleScratch.map { UnsafeMutableRawPointer($0).deallocate() }
        profile?.deallocate()
        convolutionProfile?.deallocate()
    }

    /// A convolution's slot in the per-layer profile.
    func registerConvolution(_ name: String) -> Int {
        convolutionNames.append(name)
        return convolutionNames.count - 1
    }

    func reserveParameter(_ name: String, shape: [Int]) -> TensorSlot {
        precondition(parameters == nil, "tensors are reserved before allocate()")
        let slot = TensorSlot(name: name, shape: shape, offset: parameterCount)
        parameterSlots.append(slot)
        parameterCount += slot.count
        return slot
    }

    func reserveBuffer(_ name: String, shape: [Int]) -> TensorSlot {
        precondition(buffers == nil, "tensors are reserved before allocate()")
        let slot = TensorSlot(name: name, shape: shape, offset: bufferCount)
        bufferSlots.append(slot)
        bufferCount += slot.count
        return slot
    }

    func reserveWorkspace(_ count: Int) { workspaceCount = max(workspaceCount, count) }
    func reserveSampleWeightGradients(_ count: Int) { sampleWeightGradientCount = max(sampleWeightGradientCount, count) }
    /// Rounded to whole cache lines, so every thread's scratch starts on one (vector loads never split).
    func reserveSampleScratch(_ count: Int) { sampleScratchCount = max(sampleScratchCount, (count + 15) / 16 * 16) }

    /// Per compute thread, `sampleScratchCount` floats for the convolutions that run sample by sample,
    /// 64-byte aligned. Grown when more threads compute than before: in the first step, never in the
    /// steady state.
    func sampleScratch(threads: Int) -> UnsafeMutablePointer<Float> {
        if threads > sampleScratchThreads {
            sampleScratch.map { UnsafeMutableRawPointer($0).deallocate() }
            let count = threads * max(sampleScratchCount, 16)
            sampleScratch = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
                .initializeMemory(as: Float.self, repeating: 0, count: count)
            sampleScratchThreads = threads
        }
        return sampleScratch!
    }

    func allocate() {
        parameters = .allocate(capacity: max(parameterCount, 1))
        parameters.initialize(repeating: 0, count: max(parameterCount, 1))
        gradients = .allocate(capacity: max(parameterCount, 1))
        gradients.initialize(repeating: 0, count: max(parameterCount, 1))
        buffers = .allocate(capacity: max(bufferCount, 1))
        buffers.initialize(repeating: 0, count: max(bufferCount, 1))
        workspace = .allocate(capacity: max(workspaceCount, 1))
        workspace.initialize(repeating: 0, count: max(workspaceCount, 1))
        sampleWeightGradients = .allocate(capacity: max(sampleWeightGradientCount, 1))
        sampleWeightGradients.initialize(repeating: 0, count: max(sampleWeightGradientCount, 1))
    }

    func enableProfiling() {
        if profile == nil { profile = .allocate(capacity: LayerKind.allCases.count) }
        profile!.initialize(repeating: 0, count: LayerKind.allCases.count)
        if convolutionProfile == nil { convolutionProfile = .allocate(capacity: max(2 * convolutionNames.count, 1)) }
        convolutionProfile!.initialize(repeating: 0, count: max(2 * convolutionNames.count, 1))
    }

    /// Runs one convolution's forward or backward pass, charging its wall time to its profile slot.
    @inline(__always)
    func timedConvolution(_ index: Int, backward: Bool, _ body: () -> Void) {
        timed(into: convolutionProfile.map { $0 + 2 * index + (backward ? 1 : 0) }, body)
    }

    /// Runs `body`, charging its wall time to `kind` when profiling is on.
    @inline(__always)
    func timed<T>(_ kind: LayerKind, _ body: () throws -> T) rethrows -> T {
        try timed(into: profile.map { $0 + kind.rawValue }, body)
    }

    /// Runs `body`, adding its wall time in seconds to `seconds` unless that is nil (profiling off).
    @inline(__always)
    private func timed<T>(into seconds: UnsafeMutablePointer<Double>?, _ body: () throws -> T) rethrows -> T {
        guard let seconds else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        seconds.pointee += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        return result
    }
}

/// A [C][B][H][W] activation and its gradient, allocated once for the largest batch.
///
/// Channel-major over the batch (not NCHW) on purpose: a convolution over the whole batch is then one
/// GEMM whose output lands directly in this layout, a 1×1 convolution needs no copy at all, and each
/// BatchNorm channel is one contiguous run. For one channel (the network input) it equals NCHW.
final class Activation {
    let channels, height, width: Int
    let value: UnsafeMutablePointer<Float>
    let grad: UnsafeMutablePointer<Float>

    init(channels: Int, height: Int, width: Int, maxBatch: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        let capacity = channels * height * width * maxBatch
        value = .allocate(capacity: capacity)
        value.initialize(repeating: 0, count: capacity)
        grad = .allocate(capacity: capacity)
        grad.initialize(repeating: 0, count: capacity)
    }

    deinit {
        value.deallocate()
        grad.deallocate()
    }

    func count(batch: Int) -> Int { channels * batch * height * width }
}

/// The body of a parallel loop: `(state, lower, upper)` processes indices lower..<upper of a loop whose
/// arguments are the `State` value behind the raw pointer. A C function pointer rather than a Swift
/// closure: it cannot capture, so handing it to another thread allocates nothing (a non-escaping Swift
/// closure can only reach another thread through withoutActuallyEscaping, which heap-allocates its
/// context on every call — hundreds of times per training step).
typealias ChunkKernel = @convention(c) (UnsafeRawPointer, Int, Int) -> Void

/// Runs `kernel` over 0..<count split into one contiguous chunk per compute thread (see
/// `withComputeThreads`). Chunks are disjoint and each element is computed the same way whatever the
/// split, so results are bitwise independent of the thread count.
@inline(__always)
func parallelChunks<State>(_ count: Int, minimumChunk: Int = 1, _ state: State, _ kernel: ChunkKernel) {
    let threads = min(WorkerPool.shared.threads, count / max(minimumChunk, 1))
    withUnsafePointer(to: state) { state in
        if threads > 1 {
            WorkerPool.shared.run(tasks: threads, count: count, state: UnsafeRawPointer(state), kernel: kernel)
        } else {
            kernel(UnsafeRawPointer(state), 0, count)
        }
    }
}

/// Runs one engine entry point (forward, backward, optimizer update) on the process's compute budget:
/// the thread count the caller gave OpenBLAS (openblas_set_num_threads). Inside, OpenBLAS itself runs
/// single-threaded and every GEMM and memory-bound loop is split over our worker pool instead. With
/// OpenBLAS's own threads the loops between GEMMs could not use the second core: its idle workers
/// busy-wait for the next GEMM and take the core from ours. The caller's setting is restored on return.
/// Entry points from different threads take turns (one pool, one job at a time); nested ones pass.
func withComputeThreads<T>(_ body: () throws -> T) rethrows -> T {
    let pool = WorkerPool.shared
    pthread_mutex_lock(pool.entryLock)
    defer { pthread_mutex_unlock(pool.entryLock) }
    guard pool.threads == 1 else { return try body() }  // nested entry point: already set up
    let budget = Int(openblas_get_num_threads())
    guard budget > 1 else { return try body() }
    openblas_set_num_threads(1)
    pool.threads = budget
    defer {
        pool.threads = 1
        openblas_set_num_threads(Int32(budget))
    }
    return try body()
}

/// Persistent worker threads for `parallelChunks`. A job (kernel, state pointer, count) is published by
/// bumping `generation`; worker i runs chunk i (if i < tasks), the caller runs chunk 0, and every worker
/// acknowledges through `unfinished`, so the caller never rewrites the job while a worker still reads it.
/// Idle workers spin briefly (jobs come every few microseconds during a step) and then sleep on a
/// condition variable, so a process between steps costs no CPU.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Compute threads for the current entry point; 1 outside `withComputeThreads`.
    var threads = 1
    /// Held (recursively) for the duration of an entry point.
    let entryLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    private let generation = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // The job; written before `generation` is bumped (release), read after it is seen (acquire).
    private var kernel: ChunkKernel?
    private var state: UnsafeRawPointer?
    private var count = 0, tasks = 0
    private var workers = 0

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        var recursive = pthread_mutexattr_t()
        pthread_mutexattr_init(&recursive)
        pthread_mutexattr_settype(&recursive, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(entryLock, &recursive)
        pthread_mutexattr_destroy(&recursive)
    }

    func run(tasks: Int, count: Int, state: UnsafeRawPointer, kernel: ChunkKernel) {
        while workers < tasks - 1 { startWorker(index: workers + 1) }
        (self.kernel, self.state, self.count, self.tasks) = (kernel, state, count, tasks)
        unfinished.store(workers, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        let first = chunk(0, of: tasks, count: count)
        kernel(state, first.lowerBound, first.upperBound)
        var spins = 0
        while unfinished.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins % 1024 == 0 { sched_yield() }  // a worker may have been preempted: let it run
        }
    }

    /// Starts worker `index`; it will run the first job published after this call.
    private func startWorker(index: Int) {
        workers += 1
        final class Start {
            let pool: WorkerPool, index: Int, seen: Int
            init(_ pool: WorkerPool, _ index: Int, _ seen: Int) { (self.pool, self.index, self.seen) = (pool, index, seen) }
        }
        let start = Start(self, index, generation.load(ordering: .relaxed))
        var thread = pthread_t()
        pthread_create(&thread, nil, { start in
            let start = Unmanaged<Start>.fromOpaque(start!).takeRetainedValue()
            start.pool.workLoop(index: start.index, seen: start.seen)
            return nil
        }, Unmanaged.passRetained(start).toOpaque())
        pthread_detach(thread)
    }

    private func workLoop(index: Int, seen: Int) {
        var seen = seen
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins % 1024 == 0 { sched_yield() }
                if spins < 200_000 { continue }
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if index < tasks, let kernel, let state {
                let part = chunk(index, of: tasks, count: count)
                kernel(state, part.lowerBound, part.upperBound)
            }
            unfinished.subtract(1, ordering: .releasing)
        }
    }
}

/// C = alpha·op(A)·op(B) + beta·C as a fixed grid of independent single-threaded sgemm calls over the full
/// reduction, cut by columns of C (by rows when C is too narrow, like the stem's weight gradient), the
/// tiles shared out to the compute threads.
///
/// The cut depends on the shapes only, never on the thread count. OpenBLAS's value for an element depends
/// on where the element falls in the call (its Haswell-family kernels accumulate the edge tiles differently),
/// so splitting one product at thread-count-dependent places changes bits; a fixed grid makes every tile the
/// same BLAS call whichever thread runs it, and the result the same for any `--threads`.
func gemm(_ precision: Precision, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
          alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
          beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    let byRows = n < 128 && m >= 16
    let grid = GemmGrid(byRows ? m : n, minimumTile: byRows ? 8 : 64)
    let job = GemmJob(precision: precision, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a,
                      lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, grid: grid, byRows: byRows)
    parallelChunks(grid.tiles, job) { job, lower, upper in
        let j = job.load(as: GemmJob.self)
        for tile in lower..<upper {
            let cut = j.grid.range(tile)
            if j.byRows { j.multiply(rows: cut, columns: 0..<j.n) } else { j.multiply(rows: 0..<j.m, columns: cut) }
        }
    }
}

/// 0..<count cut into at most `GemmGrid.maximumTiles` consecutive tiles of at least `minimumTile` (a
/// multiple of it, so tiles start on whole micro-kernel blocks): enough tiles to share out evenly over 2, 4
/// or 8 threads, few enough that each call still amortises OpenBLAS's packing of the other operand.
struct GemmGrid {
    static let maximumTiles = 8
    let count, tileSize, tiles: Int

    init(_ count: Int, minimumTile: Int) {
        self.count = count
        let wanted = (count + Self.maximumTiles - 1) / Self.maximumTiles
        tileSize = max(minimumTile, (wanted + minimumTile - 1) / minimumTile * minimumTile)
        tiles = max(1, (count + tileSize - 1) / tileSize)
    }

    func range(_ tile: Int) -> Range<Int> { (tile * tileSize)..<min(count, (tile + 1) * tileSize) }
}

private struct GemmJob {
    let precision: Precision
    let transposeA, transposeB: Bool
    let m, n, k: Int
    let alpha: Float
    let a: UnsafePointer<Float>
    let lda: Int
    let b: UnsafePointer<Float>
    let ldb: Int
    let beta: Float
    let c: UnsafeMutablePointer<Float>
    let ldc: Int
    let grid: GemmGrid
    let byRows: Bool

    /// The block C[rows][columns]: row r of op(A) is column r of a transposed A, column j of op(B) row j
    /// of a transposed B.
    func multiply(rows: Range<Int>, columns: Range<Int>) {
        let a = self.a + (transposeA ? rows.lowerBound : rows.lowerBound * lda)
        let b = self.b + (transposeB ? columns.lowerBound * ldb : columns.lowerBound)
        gemmOnThisThread(precision, transposeA: transposeA, transposeB: transposeB, m: rows.count, n: columns.count, k: k, alpha: alpha,
              a, lda: lda, b, ldb: ldb, beta: beta, c + rows.lowerBound * ldc + columns.lowerBound, ldc: ldc)
    }
}

/// `gemm` on the calling thread only: row-major cblas_sgemm, or in bf16 the packed AVX512_BF16 kernel.
@inline(__always)
func gemmOnThisThread(_ precision: Precision, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
           alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if precision == .bf16 {
        bf16_gemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
