/// Σu and Σu·v over `runs` runs of `length` values, `stride` apart: the batch statistics Σx, Σx² (u = v = x)
/// and backward's Σdy, Σdy·x of one normalised group. Accumulated in 16 Float lanes (and a scalar for what
/// does not fill them) per block of 1024 values and the blocks in Double — vectorised (Swift will not
/// reorder a scalar float sum by itself) yet accurate over the tens of thousands of values of a channel,
/// and in a fixed order, so deterministic. The lanes carry over from run to run: a sub-band's runs are a
/// few values long in the deep layers (layer4's are 2), and reducing the lanes after each would cost more
/// than the run. With `rectified` (the output of a fused ReLU) the ReLU's backward happens in the same pass:
/// u is zeroed in place where the output was clipped.
@inline(__always)
private func sumAndDotOfRuns(_ u: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, length: Int, runs: Int,
                             stride: Int, maskingBy rectified: UnsafePointer<Float>? = nil) -> (Double, Double) {
    typealias Lanes = SIMD16<Float>
    let block = 1024
    var sum = 0.0, dot = 0.0
    var laneSum = Lanes(), laneDot = Lanes(), tailSum: Float = 0, tailDot: Float = 0
    var inBlock = 0  // values in the lanes and tails since they were last added to the Doubles
    for run in 0..<runs {
        let u = u + run * stride, v = v + run * stride, rectified = rectified.map { $0 + run * stride }
        var i = 0
        while i < length {
            let blockEnd = min(length, i + block - inBlock)
            inBlock += blockEnd - i
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
            while i < blockEnd {
                if let rectified { u[i] = ReLU.gradient(output: rectified[i], u[i]) }
                tailSum += u[i]
                tailDot += u[i] * v[i]
                i += 1
            }
            if inBlock == block {
                sum += Double(laneSum.sum()) + Double(tailSum)
                dot += Double(laneDot.sum()) + Double(tailDot)
                (laneSum, laneDot, tailSum, tailDot, inBlock) = (Lanes(), Lanes(), 0, 0, 0)
            }
        }
    }
    return (sum + (Double(laneSum.sum()) + Double(tailSum)), dot + (Double(laneDot.sum()) + Double(tailDot)))
}

/// BatchNorm2d as PyTorch: training normalises with the batch statistics (biased variance) and moves the
/// running averages by momentum 0.1 using the unbiased variance; evaluation uses the running statistics.
///
/// Synchronised BN across ranks: both passes first build a per-channel reduction vector
/// [Σ₀ … Σ_{C−1}, Σ'₀ … Σ'_{C−1}, count] in Double (count: one channel's values, B·H·W) and hand it to
/// `context.batchNormReduce` (an in-place all-reduce) before using it, so with the hook set every rank
/// normalises with global statistics.
///
/// A following ReLU can be fused (`rectifies`): it saves a full read-and-write pass over the activation
/// in both directions, the largest non-GEMM cost of a ResNet step.
///
/// With `subBands` S > 1 it is SubSpectral Normalization (Chang et al. 2021): the H (mel) axis is cut into
/// S bands of rows and each (channel, band) pair is normalised and scaled on its own, as if it were a
/// channel: a voice's low and high bands no longer share one mean and scale. Group g = c·S + s holds rows
/// [⌊s·H/S⌋, ⌊(s+1)·H/S⌋) of channel c; every per-channel array ([C] above) is then [C·S].
final class BatchNorm2d {
    let rectifies: Bool
    let spatial: Int  // H·W
    let height, width, subBands: Int
    /// Normalised groups: channels × subBands.
    let groups: Int
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

    /// `subBands` is capped at `height`, so every band has at least one row.
    init(_ context: NetworkContext, name: String, channels: Int, height: Int, width: Int, rectifies: Bool = false,
         subBands: Int = 1) {
        self.rectifies = rectifies
        spatial = height * width
        self.height = height
        self.width = width
        self.subBands = max(1, min(subBands, height))
        groups = channels * self.subBands
        self.context = context
        weight = context.reserveParameter(name + ".weight", shape: [groups])
        bias = context.reserveParameter(name + ".bias", shape: [groups])
        runningMean = context.reserveBuffer(name + ".running_mean", shape: [groups])
        runningVar = context.reserveBuffer(name + ".running_var", shape: [groups])
        mean = .allocate(capacity: groups)
        inverseStd = .allocate(capacity: groups)
        reduction = .allocate(capacity: 2 * groups + 1)
    }

    deinit {
        mean.deallocate()
        inverseStd.deallocate()
        reduction.deallocate()
    }

    /// Weight 1, bias 0, running mean 0, running variance 1 (PyTorch's reset_parameters).
    func initialize() {
        (context.parameters + weight.offset).update(repeating: 1, count: groups)
        (context.parameters + bias.offset).update(repeating: 0, count: groups)
        (context.buffers + runningMean.offset).update(repeating: 0, count: groups)
        (context.buffers + runningVar.offset).update(repeating: 1, count: groups)
    }

    /// From now on the running statistics are the plain average over the training forwards that follow
    /// (PyTorch's momentum=None), the first forward's replacing the old ones; `stopCumulativeStatistics()` ends it.
    func startCumulativeStatistics() { cumulativeUpdates = 0 }
    func stopCumulativeStatistics() { cumulativeUpdates = nil }

    /// Sums the reduction vector over ranks with `batch`·H·W (a channel's values here) as its count; returns
    /// the samples over all ranks.
    private func reduceAcrossRanks(batch: Int) -> Double {
        reduction[2 * groups] = Double(batch * spatial)
        context.batchNormReduce?(reduction, 2 * groups + 1)
        return reduction[2 * groups] / Double(spatial)
    }

    /// input [C][B][H][W] → output [C][B][H][W] (then max(·, 0) when rectifying); output may alias input.
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, training: Bool) {
        let runMean = context.buffers + runningMean.offset, runVar = context.buffers + runningVar.offset
        let job = ForwardJob(input: input, output: output, gamma: context.parameters + weight.offset,
                             beta: context.parameters + bias.offset, mean: mean, inverseStd: inverseStd,
                             reduction: reduction, bands: bands(batch: batch), groups: groups, rectifies: rectifies)
        lastForwardWasTraining = training
        if training {
            parallelChunks(groups, job) { job, lower, upper in
                let j = job.load(as: ForwardJob.self)
                for g in lower..<upper {
                    (j.reduction[g], j.reduction[j.groups + g]) = j.bands.sumAndDot(group: g, UnsafeMutablePointer(mutating: j.input), j.input)
                }
            }
            let totalBatch = reduceAcrossRanks(batch: batch)
            let momentum = cumulativeUpdates.map { 1 / Double($0 + 1) } ?? self.momentum
            cumulativeUpdates = cumulativeUpdates.map { $0 + 1 }
            for g in 0..<groups {
                let total = totalBatch * Double(job.bands.valuesPerSample(group: g))
                let m = reduction[g] / total
                let variance = max(reduction[groups + g] / total - m * m, 0)
                mean[g] = m
                inverseStd[g] = 1 / (variance + epsilon).squareRoot()
                let unbiased = total > 1 ? variance * total / (total - 1) : variance
                runMean[g] = Float((1 - momentum) * Double(runMean[g]) + momentum * m)
                runVar[g] = Float((1 - momentum) * Double(runVar[g]) + momentum * unbiased)
            }
        } else {
            for g in 0..<groups {
                mean[g] = Double(runMean[g])
                inverseStd[g] = 1 / (Double(runVar[g]) + epsilon).squareRoot()
            }
        }
        parallelChunks(groups, job) { job, lower, upper in
            let j = job.load(as: ForwardJob.self)
            for g in lower..<upper {
                let scale = Float(Double(j.gamma[g]) * j.inverseStd[g])
                let shift = j.beta[g] - Float(j.mean[g]) * scale
                j.bands.forEachRun(group: g) { offset, n in
                    let x = j.input + offset, y = j.output + offset
                    if j.rectifies {
                        for i in 0..<n { y[i] = ReLU.apply(x[i] * scale + shift) }
                    } else {
                        for i in 0..<n { y[i] = x[i] * scale + shift }
                    }
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
        var job = BackwardJob(input: input, output: output, doutput: doutput, dinput: dinput,
                              gamma: context.parameters + weight.offset, dgamma: context.gradients + weight.offset,
                              dbeta: context.gradients + bias.offset, mean: mean, inverseStd: inverseStd,
                              reduction: reduction, bands: bands(batch: batch), groups: groups, rectifies: rectifies,
                              totalBatch: 0)
        parallelChunks(groups, job) { job, lower, upper in
            let j = job.load(as: BackwardJob.self)
            for g in lower..<upper {
                let (sumDy, sumDyX) = j.bands.sumAndDot(group: g, j.doutput, j.input,
                                                        maskingBy: j.rectifies ? j.output : nil)
                let sumDyXhat = (sumDyX - j.mean[g] * sumDy) * j.inverseStd[g]
                j.dbeta[g] += Float(sumDy)
                j.dgamma[g] += Float(sumDyXhat)
                j.reduction[g] = sumDy
                j.reduction[j.groups + g] = sumDyXhat
            }
        }
        job.totalBatch = lastForwardWasTraining ? reduceAcrossRanks(batch: batch) : 0
        parallelChunks(groups, job) { job, lower, upper in
            let j = job.load(as: BackwardJob.self)
            for g in lower..<upper {
                let total = j.totalBatch * Double(j.bands.valuesPerSample(group: g))
                let scale = Double(j.gamma[g]) * j.inverseStd[g]
                let meanDy = total > 0 ? j.reduction[g] / total : 0
                let meanDyXhat = total > 0 ? j.reduction[j.groups + g] / total : 0
                // dx = scale·dy − scale·meanDy − scale·meanDyXhat·(x − mean)·invStd, folded to a·dy + b·x + d
                let a = Float(scale)
                let b = Float(-scale * meanDyXhat * j.inverseStd[g])
                let d = Float(-scale * meanDy + scale * meanDyXhat * j.inverseStd[g] * j.mean[g])
                j.bands.forEachRun(group: g) { offset, n in
                    let dy = j.doutput + offset, x = j.input + offset, dx = j.dinput + offset
                    for i in 0..<n { dx[i] = a * dy[i] + b * x[i] + d }
                }
            }
        }
        context.gradientsReady?(parameterRange)
    }

    /// Where this layer's scales and shifts lie in the parameter buffer.
    var parameterRange: Range<Int> { weight.offset..<(bias.offset + groups) }

    private func bands(batch: Int) -> SubBands {
        SubBands(batch: batch, height: height, width: width, count: subBands)
    }

    /// The band (0..<subBands) of each of the H rows this layer normalises.
    var bandOfEachRow: [Int] {
        let bands = bands(batch: 1)
        return (0..<height).map { row in (0..<subBands).last { bands.firstRow(ofBand: $0) <= row }! }
    }
}

/// Where each normalised group's values lie in a [C][B][H][W] activation of `batch` samples: group
/// g = c·count + s is rows [⌊s·H/count⌋, ⌊(s+1)·H/count⌋) of channel c's B planes. Without sub-bands
/// (count 1) a channel's B planes are one contiguous run, summed in one pass as before sub-bands existed.
private struct SubBands {
    let batch, height, width, count: Int

    func firstRow(ofBand s: Int) -> Int { s * height / count }

    func valuesPerSample(group g: Int) -> Int {
        let s = g % count
        return (firstRow(ofBand: s + 1) - firstRow(ofBand: s)) * width
    }

    /// Group g's values: `runs` contiguous runs of `length` values, the first at `start`, `stride` apart
    /// (without sub-bands one run of the channel's B planes).
    @inline(__always)
    func layout(group g: Int) -> (start: Int, length: Int, runs: Int, stride: Int) {
        let plane = height * width
        if count == 1 { return (g * batch * plane, batch * plane, 1, 0) }
        let (c, s) = g.quotientAndRemainder(dividingBy: count)
        return (c * batch * plane + firstRow(ofBand: s) * width, valuesPerSample(group: g), batch, plane)
    }

    /// body(offset, length) for each contiguous run of group g.
    @inline(__always)
    func forEachRun(group g: Int, _ body: (Int, Int) -> Void) {
        let runs = layout(group: g)
        for run in 0..<runs.runs { body(runs.start + run * runs.stride, runs.length) }
    }

    /// Σu and Σu·v over group g (see `sumAndDotOfRuns`).
    func sumAndDot(group g: Int, _ u: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>,
                   maskingBy rectified: UnsafePointer<Float>? = nil) -> (Double, Double) {
        let runs = layout(group: g)
        return sumAndDotOfRuns(u + runs.start, v + runs.start, length: runs.length, runs: runs.runs, stride: runs.stride,
                               maskingBy: rectified.map { $0 + runs.start })
    }
}

/// A forward pass's pointers for the parallel per-group loops.
private struct ForwardJob {
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let gamma, beta: UnsafePointer<Float>
    let mean, inverseStd, reduction: UnsafeMutablePointer<Double>
    let bands: SubBands
    let groups: Int
    let rectifies: Bool
}

/// A backward pass's pointers for the parallel per-group loops; `totalBatch` is the (global) sample count.
private struct BackwardJob {
    let input, output: UnsafePointer<Float>
    let doutput, dinput: UnsafeMutablePointer<Float>
    let gamma: UnsafePointer<Float>
    let dgamma, dbeta: UnsafeMutablePointer<Float>
    let mean, inverseStd, reduction: UnsafeMutablePointer<Double>
    let bands: SubBands
    let groups: Int
    let rectifies: Bool
    var totalBatch: Double
}
