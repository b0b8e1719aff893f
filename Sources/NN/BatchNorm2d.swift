/// Σu and Σu·v over a contiguous run: the batch statistics Σx, Σx² (u = v = x) and backward's Σdy, Σdy·x.
/// Accumulated in 16 Float lanes per block of 1024 values and the blocks in Double — vectorised (Swift
/// will not reorder a scalar float sum by itself) yet accurate over the tens of thousands of values of a
/// channel, and in a fixed order, so deterministic. With `rectified` (the output of a fused ReLU) the
/// ReLU's backward happens in the same pass: u is zeroed in place where the output was clipped.
@inline(__always)
private func sumAndDot(_ u: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, _ n: Int,
                       maskingBy rectified: UnsafePointer<Float>? = nil) -> (Double, Double) {
    typealias Lanes = SIMD16<Float>
    var sum = 0.0, dot = 0.0, i = 0
    while i < n {
        let blockEnd = min(n, i + 1024)
        var laneSum = Lanes(), laneDot = Lanes()
        while i + Lanes.scalarCount <= blockEnd {
            var a: Lanes = loadVector(u + i)
            if let rectified {
                a.replace(with: 0, where: loadVector(rectified + i) .<= 0)
                storeVector(a, u + i)
            }
            laneSum += a
            laneDot += a * loadVector(v + i)
            i += Lanes.scalarCount
        }
        var tailSum: Float = 0, tailDot: Float = 0
        while i < blockEnd {
            if let rectified { u[i] = ReLU.gradient(output: rectified[i], u[i]) }
            tailSum += u[i]
            tailDot += u[i] * v[i]
            i += 1
        }
        sum += Double(laneSum.sum()) + Double(tailSum)
        dot += Double(laneDot.sum()) + Double(tailDot)
    }
    return (sum, dot)
}

/// BatchNorm2d as PyTorch: training normalises with the batch statistics (biased variance) and moves the
/// running averages by momentum 0.1 using the unbiased variance; evaluation uses the running statistics.
///
/// Synchronised BN across ranks: both passes first build a per-channel reduction vector
/// [Σ₀ … Σ_{C−1}, Σ'₀ … Σ'_{C−1}, count] in Double and hand it to `context.batchNormReduce` (an in-place
/// all-reduce) before using it, so with the hook set every rank normalises with global statistics.
///
/// A following ReLU can be fused (`rectifies`): it saves a full read-and-write pass over the activation
/// in both directions, the largest non-GEMM cost of a ResNet step.
final class BatchNorm2d {
    let channels: Int
    let rectifies: Bool
    let spatial: Int  // H·W
    let momentum = 0.1
    let epsilon = BatchNorm2d.epsilon
    /// PyTorch's default (see `ResNet.batchNormEpsilon`).
    static let epsilon = 1e-5
    let weight, bias: TensorSlot  // [C] each, contiguous: one gradient range
    let runningMean, runningVar: TensorSlot  // [C] each in the buffers array
    private let context: NetworkContext
    /// Statistics the last forward normalised with, kept for backward: mean[C], 1/√(var+ε)[C].
    private let mean, inverseStd: UnsafeMutablePointer<Double>
    private let reduction: UnsafeMutablePointer<Double>  // [2C + 1]
    private var lastForwardWasTraining = false
    /// Training forwards since `startCumulativeStatistics()`; nil: the running statistics move by `momentum`.
    private var cumulativeUpdates: Int?

    init(_ context: NetworkContext, name: String, channels: Int, height: Int, width: Int, rectifies: Bool = false) {
        self.channels = channels
        self.rectifies = rectifies
        spatial = height * width
        self.context = context
        weight = context.reserveParameter(name + ".weight", shape: [channels])
        bias = context.reserveParameter(name + ".bias", shape: [channels])
        runningMean = context.reserveBuffer(name + ".running_mean", shape: [channels])
        runningVar = context.reserveBuffer(name + ".running_var", shape: [channels])
        mean = .allocate(capacity: channels)
        inverseStd = .allocate(capacity: channels)
        reduction = .allocate(capacity: 2 * channels + 1)
    }

    deinit {
        mean.deallocate()
        inverseStd.deallocate()
        reduction.deallocate()
    }

    /// Weight 1, bias 0, running mean 0, running variance 1 (PyTorch's reset_parameters).
    func initialize() {
        (context.parameters + weight.offset).update(repeating: 1, count: channels)
        (context.parameters + bias.offset).update(repeating: 0, count: channels)
        (context.buffers + runningMean.offset).update(repeating: 0, count: channels)
        (context.buffers + runningVar.offset).update(repeating: 1, count: channels)
    }

    /// From now on the running statistics are the plain average over the training forwards that follow
    /// (PyTorch's momentum=None), the first forward's replacing the old ones; `stopCumulativeStatistics()` ends it.
    func startCumulativeStatistics() { cumulativeUpdates = 0 }
    func stopCumulativeStatistics() { cumulativeUpdates = nil }

    private func reduceAcrossRanks(count: Int) -> Double {
        reduction[2 * channels] = Double(count)
        context.batchNormReduce?(reduction, 2 * channels + 1)
        return reduction[2 * channels]
    }

    /// input [C][B][H][W] → output [C][B][H][W] (then max(·, 0) when rectifying); output may alias input.
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, training: Bool) {
        let n = batch * spatial
        let runMean = context.buffers + runningMean.offset, runVar = context.buffers + runningVar.offset
        let job = ForwardJob(input: input, output: output, gamma: context.parameters + weight.offset,
                             beta: context.parameters + bias.offset, mean: mean, inverseStd: inverseStd,
                             reduction: reduction, n: n, channels: channels, rectifies: rectifies)
        lastForwardWasTraining = training
        if training {
            parallelChunks(channels, job) { job, lower, upper in
                let j = job.load(as: ForwardJob.self)
                for c in lower..<upper {
                    let x = j.input + c * j.n
                    (j.reduction[c], j.reduction[j.channels + c]) = sumAndDot(UnsafeMutablePointer(mutating: x), x, j.n)
                }
            }
            let total = reduceAcrossRanks(count: n)
            let momentum = cumulativeUpdates.map { 1 / Double($0 + 1) } ?? self.momentum
            cumulativeUpdates = cumulativeUpdates.map { $0 + 1 }
            for c in 0..<channels {
                let m = reduction[c] / total
                let variance = max(reduction[channels + c] / total - m * m, 0)
                mean[c] = m
                inverseStd[c] = 1 / (variance + epsilon).squareRoot()
                let unbiased = total > 1 ? variance * total / (total - 1) : variance
                runMean[c] = Float((1 - momentum) * Double(runMean[c]) + momentum * m)
                runVar[c] = Float((1 - momentum) * Double(runVar[c]) + momentum * unbiased)
            }
        } else {
            for c in 0..<channels {
                mean[c] = Double(runMean[c])
                inverseStd[c] = 1 / (Double(runVar[c]) + epsilon).squareRoot()
            }
        }
        parallelChunks(channels, job) { job, lower, upper in
            let j = job.load(as: ForwardJob.self)
            for c in lower..<upper {
                let scale = Float(Double(j.gamma[c]) * j.inverseStd[c])
                let shift = j.beta[c] - Float(j.mean[c]) * scale
                let x = j.input + c * j.n, y = j.output + c * j.n
                if j.rectifies {
                    for i in 0..<j.n { y[i] = ReLU.apply(x[i] * scale + shift) }
                } else {
                    for i in 0..<j.n { y[i] = x[i] * scale + shift }
                }
            }
        }
    }

    /// doutput [C][B][H][W] → dweight, dbias += (local sums); dinput [C][B][H][W] (overwritten).
    /// When rectifying, `output` is the forward result and doutput is masked by it in place first.
    /// After a training forward the statistics depend on the input, which adds the two mean terms:
    ///   dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂));  after an eval forward simply dx = γ/σ · dy.
    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>, doutput: UnsafeMutablePointer<Float>,
                  dinput: UnsafeMutablePointer<Float>, batch: Int) {
        let n = batch * spatial
        var job = BackwardJob(input: input, output: output, doutput: doutput, dinput: dinput,
                              gamma: context.parameters + weight.offset, dgamma: context.gradients + weight.offset,
                              dbeta: context.gradients + bias.offset, mean: mean, inverseStd: inverseStd,
                              reduction: reduction, n: n, channels: channels, rectifies: rectifies, total: 0)
        parallelChunks(channels, job) { job, lower, upper in
            let j = job.load(as: BackwardJob.self)
            for c in lower..<upper {
                let (sumDy, sumDyX) = sumAndDot(j.doutput + c * j.n, j.input + c * j.n, j.n,
                                                maskingBy: j.rectifies ? j.output + c * j.n : nil)
                let sumDyXhat = (sumDyX - j.mean[c] * sumDy) * j.inverseStd[c]
                j.dbeta[c] += Float(sumDy)
                j.dgamma[c] += Float(sumDyXhat)
                j.reduction[c] = sumDy
                j.reduction[j.channels + c] = sumDyXhat
            }
        }
        job.total = lastForwardWasTraining ? reduceAcrossRanks(count: n) : 0
        parallelChunks(channels, job) { job, lower, upper in
            let j = job.load(as: BackwardJob.self)
            for c in lower..<upper {
                let scale = Double(j.gamma[c]) * j.inverseStd[c]
                let meanDy = j.total > 0 ? j.reduction[c] / j.total : 0
                let meanDyXhat = j.total > 0 ? j.reduction[j.channels + c] / j.total : 0
                // dx = scale·dy − scale·meanDy − scale·meanDyXhat·(x − mean)·invStd, folded to a·dy + b·x + d
                let a = Float(scale)
                let b = Float(-scale * meanDyXhat * j.inverseStd[c])
                let d = Float(-scale * meanDy + scale * meanDyXhat * j.inverseStd[c] * j.mean[c])
                let dy = j.doutput + c * j.n, x = j.input + c * j.n, dx = j.dinput + c * j.n
                for i in 0..<j.n { dx[i] = a * dy[i] + b * x[i] + d }
            }
        }
        context.gradientsReady?(weight.offset..<(bias.offset + channels))
    }
}

/// A forward pass's pointers for the parallel per-channel loops.
private struct ForwardJob {
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let gamma, beta: UnsafePointer<Float>
    let mean, inverseStd, reduction: UnsafeMutablePointer<Double>
    let n, channels: Int
    let rectifies: Bool
}

/// A backward pass's pointers for the parallel per-channel loops; `total` is the (global) element count.
private struct BackwardJob {
    let input, output: UnsafePointer<Float>
    let doutput, dinput: UnsafeMutablePointer<Float>
    let gamma: UnsafePointer<Float>
    let dgamma, dbeta: UnsafeMutablePointer<Float>
    let mean, inverseStd, reduction: UnsafeMutablePointer<Double>
    let n, channels: Int
    let rectifies: Bool
    var total: Double
}
