import CBLAS
import Foundation

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
    case gemm, im2col, batchNorm, residual, pooling, dropout, linear, loss, optimizer

    public var label: String {
        switch self {
        case .gemm: return "conv gemm"
        case .im2col: return "im2col"
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

/// Shared state of one network: the three flat buffers, the scratch for im2col, the hooks that let a
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

    private(set) var parameters: UnsafeMutablePointer<Float>!
    private(set) var gradients: UnsafeMutablePointer<Float>!
    private(set) var buffers: UnsafeMutablePointer<Float>!
    /// im2col columns and their gradient; shared by all convolutions, which run one at a time.
    private(set) var workspace: UnsafeMutablePointer<Float>!

    /// Called by backward each time a layer has finished its parameter gradients, with that layer's
    /// range in the gradient buffer. Ranges arrive in strictly decreasing order and tile the buffer.
    var gradientsReady: ((Range<Int>) -> Void)?
    /// In-place sum over ranks of a BatchNorm reduction vector; nil means purely local statistics.
    var batchNormReduce: ((UnsafeMutablePointer<Double>, Int) -> Void)?
    /// Accumulated seconds per layer kind; nil (the default) costs nothing.
    var profile: UnsafeMutablePointer<Double>?

    deinit {
        parameters?.deallocate()
        gradients?.deallocate()
        buffers?.deallocate()
        workspace?.deallocate()
        profile?.deallocate()
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

    func allocate() {
        parameters = .allocate(capacity: max(parameterCount, 1))
        parameters.initialize(repeating: 0, count: max(parameterCount, 1))
        gradients = .allocate(capacity: max(parameterCount, 1))
        gradients.initialize(repeating: 0, count: max(parameterCount, 1))
        buffers = .allocate(capacity: max(bufferCount, 1))
        buffers.initialize(repeating: 0, count: max(bufferCount, 1))
        workspace = .allocate(capacity: max(workspaceCount, 1))
        workspace.initialize(repeating: 0, count: max(workspaceCount, 1))
    }

    func enableProfiling() {
        if profile == nil { profile = .allocate(capacity: LayerKind.allCases.count) }
        profile!.initialize(repeating: 0, count: LayerKind.allCases.count)
    }

    /// Runs `body`, charging its wall time to `kind` when profiling is on.
    @inline(__always)
    func timed<T>(_ kind: LayerKind, _ body: () throws -> T) rethrows -> T {
        guard let profile else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        profile[kind.rawValue] += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        return result
    }
}

/// A [C][B][H][W] activation and its gradient, allocated once for the largest batch.
///
/// Channel-major over the batch (not NCHW) on purpose: a convolution over the whole batch is then one
/// GEMM whose output lands directly in this layout, a 1×1 convolution needs no copy at all, and each
/// BatchNorm channel is one contiguous run. For one channel (the network input) it equals NCHW.
final class Activation {
    let channels, height, width, maxBatch: Int
    let value: UnsafeMutablePointer<Float>
    let grad: UnsafeMutablePointer<Float>

    init(channels: Int, height: Int, width: Int, maxBatch: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        self.maxBatch = maxBatch
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

/// Runs `kernel` over 0..<count split into one contiguous chunk per OpenBLAS thread (the process's compute
/// thread budget, set by the caller through openblas_set_num_threads), for the memory-bound loops between
/// GEMMs. Chunks are disjoint and each element is computed the same way whatever the split, so results are
/// bitwise independent of the thread count.
@inline(__always)
func parallelChunks<State>(_ count: Int, minimumChunk: Int = 1, _ state: State, _ kernel: ChunkKernel) {
    let threads = min(Int(openblas_get_num_threads()), count / max(minimumChunk, 1))
    withUnsafePointer(to: state) { state in
        if threads > 1 {
            WorkerPool.shared.run(tasks: threads, count: count, state: UnsafeRawPointer(state), kernel: kernel)
        } else {
            kernel(UnsafeRawPointer(state), 0, count)
        }
    }
}

/// Persistent worker threads for `parallelChunks`: the job (kernel, state pointer, count) is published
/// under a mutex, the caller runs chunk 0 itself and waits for the others.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var kernel: ChunkKernel?
    private var state: UnsafeRawPointer?
    private var count = 0, tasks = 0, nextTask = 0, unfinished = 0, workers = 0

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
    }

    func run(tasks: Int, count: Int, state: UnsafeRawPointer, kernel: ChunkKernel) {
        pthread_mutex_lock(mutex)
        while workers < tasks - 1 { startWorker() }
        (self.kernel, self.state, self.count, self.tasks) = (kernel, state, count, tasks)
        nextTask = 1
        unfinished = tasks - 1
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        kernel(state, 0, count / tasks)
        pthread_mutex_lock(mutex)
        while unfinished > 0 { pthread_cond_wait(finished, mutex) }
        (self.kernel, self.state) = (nil, nil)
        pthread_mutex_unlock(mutex)
    }

    private func startWorker() {
        workers += 1
        var thread = pthread_t()
        let pool = Unmanaged.passUnretained(self).toOpaque()  // the shared pool lives as long as the process
        pthread_create(&thread, nil, { pool in
            Unmanaged<WorkerPool>.fromOpaque(pool!).takeUnretainedValue().workLoop()
            return nil
        }, pool)
        pthread_detach(thread)
    }

    private func workLoop() {
        pthread_mutex_lock(mutex)
        while true {
            while nextTask >= tasks { pthread_cond_wait(wake, mutex) }
            let task = nextTask
            nextTask += 1
            let (kernel, state, lower, upper) = (kernel!, state!, count * task / tasks, count * (task + 1) / tasks)
            pthread_mutex_unlock(mutex)
            kernel(state, lower, upper)
            pthread_mutex_lock(mutex)
            unfinished -= 1
            if unfinished == 0 { pthread_cond_signal(finished) }
        }
    }
}

/// Row-major C = alpha·op(A)·op(B) + beta·C with op(A) m×k and op(B) k×n; Int arguments instead of Int32.
@inline(__always)
func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
          alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
          beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
