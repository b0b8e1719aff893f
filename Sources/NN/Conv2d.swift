/// Floor division that is correct for negative numerators (Swift's `/` truncates toward zero).
@inline(__always)
private func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// The output rows/columns o with 0 ≤ o·stride − padding + offset < inputSize, clipped to 0..<outputSize:
/// the positions where a kernel tap reads the image rather than zero padding.
@inline(__always)
private func validOutputRange(offset: Int, stride: Int, padding: Int, inputSize: Int, outputSize: Int) -> Range<Int> {
    let lower = min(outputSize, max(0, floorDivide(padding - offset + stride - 1, stride)))
    let upper = min(outputSize, floorDivide(inputSize - 1 + padding - offset, stride) + 1)
    return lower..<max(lower, upper)
}

/// Geometry of a convolution or pooling window over [C][B][H][W] data.
struct ConvGeometry {
    let channels, height, width, kernel, stride, padding: Int
    var outputHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    var outputWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
}

/// Where one kernel tap (ky, kx) reads the image: the output rows and columns whose input lies inside it
/// rather than in the zero padding, its offset from the output position's top-left input and, for a
/// polyphase walk (see `Im2colPlan`), the phase plane it reads and that offset as one flat shift of it.
struct KernelTap {
    let rows, columns: Range<Int>
    let offsetY, offsetX: Int
    /// Polyphase walks: which of the four (row parity, column parity) phase planes the tap reads.
    let phase: Int
    let shift: Int

    /// The positions i of `count` consecutive floats whose i + shift stays inside them.
    func flat(_ count: Int) -> Range<Int> {
        let first = min(count, max(0, -shift))
        return first..<max(first, min(count, count - shift))
    }
}

/// im2col's tables for one convolution, computed once: a `KernelTap` per tap and, for a polyphase walk,
/// per tap which output positions read the image (mask all ones) rather than padding (0). A polyphase walk
/// serves a stride-2 convolution with kernel 2·padding + 1 (the stem, the stage entries) one sample at a
/// time: split into its four phase planes image[2y + py][2x + px], each the output's size, the image a
/// tap reads is one phase plane shifted, so the scalar stride-2 gather becomes a vectorised copy.
/// (The stride-1 3×3 convolutions, the bulk of a ResNet, do not come here: see `WinogradConvolution`.)
final class Im2colPlan {
    let geometry: ConvGeometry
    let taps: UnsafeMutablePointer<KernelTap>
    let masks: UnsafeMutablePointer<UInt32>?  // [k·k][Ho][Wo], polyphase walks only
    /// Floats of phase-plane scratch a polyphase walk needs ([Cin][4][Ho][Wo]); 0 when it is not one.
    let phaseCount: Int

    /// `perSample`: the convolution walks one sample at a time (else the whole batch).
    init(_ g: ConvGeometry, perSample: Bool) {
        geometry = g
        let outputPlane = g.outputHeight * g.outputWidth
        let polyphase = perSample && g.stride == 2 && g.kernel == 2 * g.padding + 1
        phaseCount = polyphase ? g.channels * 4 * outputPlane : 0
        taps = .allocate(capacity: g.kernel * g.kernel)
        for ky in 0..<g.kernel {
            for kx in 0..<g.kernel {
                let offsetY = ky - g.padding, offsetX = kx - g.padding
                // Input row 2·oy + offsetY is row oy + (offsetY >> 1) of phase offsetY & 1 (floor, parity).
                taps[ky * g.kernel + kx] = KernelTap(
                    rows: validOutputRange(offset: ky, stride: g.stride, padding: g.padding, inputSize: g.height,
                                           outputSize: g.outputHeight),
                    columns: validOutputRange(offset: kx, stride: g.stride, padding: g.padding, inputSize: g.width,
                                              outputSize: g.outputWidth),
                    offsetY: offsetY, offsetX: offsetX,
                    phase: polyphase ? (offsetY & 1) * 2 + (offsetX & 1) : 0,
                    shift: polyphase ? (offsetY >> 1) * g.outputWidth + (offsetX >> 1) : 0)
            }
        }
        guard polyphase else {
            masks = nil
            return
        }
        masks = .allocate(capacity: g.kernel * g.kernel * outputPlane)
        for t in 0..<(g.kernel * g.kernel) {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    let readsImage = taps[t].rows.contains(oy) && taps[t].columns.contains(ox)
                    masks![t * outputPlane + oy * g.outputWidth + ox] = readsImage ? ~0 : 0
                }
            }
        }
    }

    deinit {
        taps.deallocate()
        masks?.deallocate()
    }

    /// im2col and its adjoint col2im in one walker, so the index arithmetic exists once.
    ///   gather:  columns[(c·k + ky)·k + kx][b][oy][ox] = image[c][b][oy·s − p + ky][ox·s − p + kx]  (0 in the padding)
    ///   scatter: image[...] += columns[...]  (the adjoint; the caller zeroes `image` first unless accumulating)
    /// Column rows are independent when gathering; when scattering, the k·k rows of one channel add into the
    /// same image, so the work is split by whole channels.
    func run(batch: Int, image: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>, scatter: Bool) {
        let g = geometry
        precondition(phaseCount == 0, "a polyphase walk runs one sample at a time")
        let job = Im2colJob(geometry: g, batch: batch, samples: 0..<batch, image: image, columns: columns,
                            columnRowStride: batch * g.outputHeight * g.outputWidth, taps: taps, masks: nil,
                            phases: nil)
        if scatter {
            parallelChunks(g.channels, job) { job, lower, upper in
                let job = job.load(as: Im2colJob.self), taps = job.geometry.kernel * job.geometry.kernel
                im2colRows(job, scatter: true, rows: (lower * taps)..<(upper * taps))
            }
        } else {
            parallelChunks(g.channels * g.kernel * g.kernel, minimumChunk: 4, job) { job, lower, upper in
                im2colRows(job.load(as: Im2colJob.self), scatter: false, rows: lower..<upper)
            }
        }
    }

    /// The same walk for one sample of the batch, on the calling thread, with that sample's columns as a
    /// matrix of their own: columns[(c·k + ky)·k + kx][oy][ox]. A scatter touches only image[·][sample].
    /// `phases` is scratch of `phaseCount` floats (unused when that is 0).
    func run(batch: Int, sample: Int, image: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>,
             phases: UnsafeMutablePointer<Float>, scatter: Bool) {
        let g = geometry, polyphase = phaseCount > 0
        let job = Im2colJob(geometry: g, batch: batch, samples: sample..<(sample + 1), image: image, columns: columns,
                            columnRowStride: g.outputHeight * g.outputWidth, taps: taps, masks: masks,
                            phases: polyphase ? phases : nil)
        if polyphase {
            if scatter { phases.update(repeating: 0, count: phaseCount) } else { splitPhases(sample, batch, image, phases) }
        }
        im2colRows(job, scatter: scatter, rows: 0..<(g.channels * g.kernel * g.kernel))
        if polyphase && scatter { mergePhases(sample, batch, image, phases) }
    }

    /// phases[c][py·2 + px][y][x] = image[c][sample][2y + py][2x + px], for the positions inside the image.
    private func splitPhases(_ sample: Int, _ batch: Int, _ image: UnsafePointer<Float>,
                             _ phases: UnsafeMutablePointer<Float>) {
        walkPhases(sample, batch) { imageIndex, phaseIndex in phases[phaseIndex] = image[imageIndex] }
    }

    /// The adjoint: image[c][sample][2y + py][2x + px] += phases[c][py·2 + px][y][x].
    private func mergePhases(_ sample: Int, _ batch: Int, _ image: UnsafeMutablePointer<Float>,
                             _ phases: UnsafePointer<Float>) {
        walkPhases(sample, batch) { imageIndex, phaseIndex in image[imageIndex] += phases[phaseIndex] }
    }

    @inline(__always)
    private func walkPhases(_ sample: Int, _ batch: Int, _ body: (Int, Int) -> Void) {
        let g = geometry, outH = g.outputHeight, outW = g.outputWidth
        for c in 0..<g.channels {
            let imageBase = (c * batch + sample) * g.height * g.width
            for phase in 0..<4 {
                let py = phase >> 1, px = phase & 1, phaseBase = (c * 4 + phase) * outH * outW
                for y in 0..<min(outH, (g.height - py + 1) / 2) {
                    for x in 0..<min(outW, (g.width - px + 1) / 2) {
                        body(imageBase + (2 * y + py) * g.width + 2 * x + px, phaseBase + y * outW + x)
                    }
                }
            }
        }
    }
}

private struct Im2colJob {
    let geometry: ConvGeometry
    let batch: Int
    /// The samples walked; the first one's columns start at `columns`, the next follow it in each row.
    let samples: Range<Int>
    let image, columns: UnsafeMutablePointer<Float>
    let columnRowStride: Int
    let taps: UnsafePointer<KernelTap>
    /// A polyphase walk's masks and its phase planes of the sample (`Im2colPlan`), which its taps read
    /// instead of the image; nil otherwise.
    let masks: UnsafePointer<UInt32>?
    let phases: UnsafeMutablePointer<Float>?
}

private func im2colRows(_ job: Im2colJob, scatter: Bool, rows columnRows: Range<Int>) {
    let g = job.geometry, taps = g.kernel * g.kernel
    let plane = g.height * g.width, outputPlane = g.outputHeight * g.outputWidth
    var channel = columnRows.lowerBound / taps, t = columnRows.lowerBound % taps
    for row in columnRows {
        let tap = job.taps[t]
        for b in job.samples {
            let column = job.columns + row * job.columnRowStride + (b - job.samples.lowerBound) * outputPlane
            if let masks = job.masks, let phases = job.phases {
                shiftedRow(column, phases + (channel * 4 + tap.phase) * outputPlane, mask: masks + t * outputPlane,
                           tap: tap, count: outputPlane, scatter: scatter)
            } else {
                stridedRows(column, job.image + (channel * job.batch + b) * plane, tap: tap, geometry: g,
                            scatter: scatter)
            }
        }
        t += 1
        if t == taps { (t, channel) = (0, channel + 1) }
    }
}

/// One tap of one sample in general: output row by output row, zero where the tap reads padding. Plain
/// loops rather than memcpy/memset: rows are short (a few to a few dozen floats).
@inline(__always)
private func stridedRows(_ column: UnsafeMutablePointer<Float>, _ image: UnsafeMutablePointer<Float>,
                         tap: KernelTap, geometry g: ConvGeometry, scatter: Bool) {
    let outW = g.outputWidth, s = g.stride
    var output = column
    for oy in 0..<g.outputHeight {
        defer { output += outW }
        guard tap.rows.contains(oy) else {
            if !scatter { for ox in 0..<outW { output[ox] = 0 } }
            continue
        }
        // The image row this output row reads, shifted so index ox·s addresses it.
        let source = image + (oy * s + tap.offsetY) * g.width + tap.offsetX
        if scatter {
            for ox in tap.columns { source[ox * s] += output[ox] }
        } else {
            for ox in 0..<tap.columns.lowerBound { output[ox] = 0 }
            for ox in tap.columns { output[ox] = source[ox * s] }
            for ox in tap.columns.upperBound..<outW { output[ox] = 0 }
        }
    }
}

/// One tap of a polyphase walk, whose column row is a phase plane shifted by one flat offset (see
/// `Im2colPlan`), over the `count` floats of the plane. One branch-free, vectorisable pass instead of a
/// short row per output row. Where the tap reads padding the flat shift would reach a neighbouring row
/// instead; the tap's mask is ANDed into the float's bits there, giving +0 (a scatter adds +0 there,
/// harmless: one thread owns the plane), and positions whose shift leaves the plane (they read padding
/// too) are skipped.
/// Loads are unconditional (and in range), so the loops vectorise; a `mask ? load : 0` select would make
/// the load conditional and keep them scalar.
@inline(__always)
private func shiftedRow(_ column: UnsafeMutablePointer<Float>, _ image: UnsafeMutablePointer<Float>,
                                mask: UnsafePointer<UInt32>, tap: KernelTap, count: Int, scatter: Bool) {
    let source = image + tap.shift, flat = tap.flat(count)
    if scatter {
        for i in flat { source[i] += Float(bitPattern: column[i].bitPattern & mask[i]) }
    } else {
        for i in 0..<flat.lowerBound { column[i] = 0 }
        for i in flat { column[i] = Float(bitPattern: source[i].bitPattern & mask[i]) }
        for i in flat.upperBound..<count { column[i] = 0 }
    }
}

/// 2-D convolution without bias (every ResNet convolution feeds a BatchNorm, which supplies the shift), as
/// GEMMs over channel-major activations:
///   output[Cout][B·Ho·Wo] = weight[Cout][Cin·k·k] · columns[Cin·k·k][B·Ho·Wo]
/// A 1×1 stride-1 convolution is that GEMM on the input itself, with no im2col. 3×3 stride-1 "same"
/// convolutions, most of a ResNet's work, use Winograd's F(2×2, 3×3) instead (`WinogradConvolution`):
/// 16 multiplies per 2×2 outputs and input channel where the GEMM does 36.
///
/// Of the others, wide convolutions (> 32 output channels) and 1×1 ones run each GEMM over the whole batch and keep
/// their forward columns for backward's weight gradient; the column gradient goes through the network's
/// workspace. Thin ones (≤ 32 output channels, kernel > 1) run sample by sample, im2col and GEMMs back to
/// back on one sample's columns in a per-thread scratch that stays in cache, gathering them again in
/// backward rather than keeping them: over the whole batch their column matrix (9× the input for 3×3)
/// streamed through memory several times per step and OpenBLAS copied ("packed") it before each thin
/// multiply, which together cost more than the multiplies. The weight gradient is a per-sample partial
/// summed in sample order, so the bits do not depend on how samples are spread over threads.
final class Conv2d {
    let geometry: ConvGeometry
    let outChannels: Int
    let weight: TensorSlot  // [Cout][Cin][k][k], PyTorch's layout
    private let context: NetworkContext
    private let isPointwise: Bool
    private let runsPerSample: Bool
    private let columns: UnsafeMutablePointer<Float>?  // wide, not pointwise: [Cin·k·k][B][Ho][Wo] of the last forward
    private let im2col: Im2colPlan!  // nil for Winograd
    private let winograd: WinogradConvolution?
    private let profileIndex: Int

    var inChannels: Int { geometry.channels }
    var outputHeight: Int { geometry.outputHeight }
    var outputWidth: Int { geometry.outputWidth }
    private var reduction: Int { geometry.channels * geometry.kernel * geometry.kernel }

    init(_ context: NetworkContext, name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int,
         padding: Int, inputHeight: Int, inputWidth: Int, maxBatch: Int) throws {
        geometry = ConvGeometry(channels: inChannels, height: inputHeight, width: inputWidth,
                                kernel: kernel, stride: stride, padding: padding)
        try require(geometry.outputHeight >= 1 && geometry.outputWidth >= 1, "input size of \(name)",
                    "\(inputHeight)x\(inputWidth)", "smaller than its \(kernel)x\(kernel) kernel")
        self.outChannels = outChannels
        self.context = context
        weight = context.reserveParameter(name + ".weight", shape: [outChannels, inChannels, kernel, kernel])
        profileIndex = context.registerConvolution(name)
        isPointwise = kernel == 1 && stride == 1 && padding == 0
        let isWinograd = kernel == 3 && stride == 1 && padding == 1
        runsPerSample = !isWinograd && outChannels <= 32 && kernel > 1  // a 1×1 projection is too little work per sample
        winograd = isWinograd ? WinogradConvolution(context, geometry: geometry, outChannels: outChannels,
                                                    maxBatch: maxBatch) : nil
        im2col = isWinograd ? nil : Im2colPlan(geometry, perSample: runsPerSample)
        let sampleColumnCount = inChannels * kernel * kernel * geometry.outputHeight * geometry.outputWidth
        if isWinograd {
            columns = nil
        } else if runsPerSample {
            columns = nil
            context.reserveSampleWeightGradients(maxBatch * weight.count)
            // Columns, their gradient and the phase planes of a polyphase im2col.
            context.reserveSampleScratch(2 * sampleColumnCount + im2col.phaseCount)
        } else if isPointwise {
            columns = nil
        } else {
            columns = .allocate(capacity: maxBatch * sampleColumnCount)
            columns!.initialize(repeating: 0, count: maxBatch * sampleColumnCount)
            context.reserveWorkspace(maxBatch * sampleColumnCount)
        }
    }

    deinit {
        columns?.deallocate()
    }

    /// kaiming_normal_(mode="fan_out", nonlinearity="relu"), as torchvision initialises ResNet convolutions.
    func initialize(_ rng: inout Xoshiro256) {
        let standardDeviation = (2.0 / Double(outChannels * geometry.kernel * geometry.kernel)).squareRoot()
        let w = context.parameters + weight.offset
        for i in 0..<weight.count { w[i] = Float(rng.nextGaussian() * standardDeviation) }
    }

    /// Multiply-adds ×2 of one sample's forward pass.
    var forwardFlopsPerSample: Int { 2 * outChannels * reduction * outputHeight * outputWidth }

    /// Multiply-adds ×2 one sample's forward pass really runs: 16 per tile and channel pair for Winograd.
    var executedFlopsPerSample: Int { winograd?.forwardFlopsPerSample ?? forwardFlopsPerSample }

    /// input [Cin][B][H][W] → output [Cout][B][Ho][Wo]
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        context.timedConvolution(profileIndex, backward: false) { forwardPass(input: input, output: output, batch: batch) }
    }

    private func forwardPass(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        if let winograd {
            context.timed(.winograd) {
                winograd.forward(weight: context.parameters + weight.offset, input: input, output: output, batch: batch)
            }
            return
        }
        if runsPerSample {
            context.timed(.convolutionPerSample) {
                let job = sampleJob(input: input, batch: batch, output: output)
                parallelChunks(job.tasks, job) { job, lower, upper in
                    let job = job.load(as: SampleJob.self)
                    for task in lower..<upper { job.forward(task: task) }
                }
            }
            return
        }
        let n = batch * outputHeight * outputWidth
        if let columns {
            context.timed(.im2col) {
                im2col.run(batch: batch, image: UnsafeMutablePointer(mutating: input), columns: columns, scatter: false)
            }
        }
        let columns = UnsafePointer(self.columns) ?? input
        context.timed(.gemm) {
            gemm(context.precision, transposeA: false, transposeB: false, m: outChannels, n: n, k: reduction,
                 context.parameters + weight.offset, lda: reduction, columns, ldb: n, beta: 0, output, ldc: n)
        }
    }

    /// doutput [Cout][B][Ho][Wo] → dweight += doutput·columnsᵀ, and if `dinput` is given
    /// dinput [Cin][B][H][W] (= or += when `accumulate`) col2im(weightᵀ·doutput).
    /// Must follow the forward of the same input (wide convolutions reuse its columns).
    func backward(input: UnsafePointer<Float>, doutput: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>?,
                  accumulate: Bool, batch: Int) {
        context.timedConvolution(profileIndex, backward: true) {
            backwardPass(input: input, doutput: doutput, dinput: dinput, accumulate: accumulate, batch: batch)
        }
    }

    private func backwardPass(input: UnsafePointer<Float>, doutput: UnsafePointer<Float>,
                              dinput: UnsafeMutablePointer<Float>?, accumulate: Bool, batch: Int) {
        if let winograd {
            context.timed(.winograd) {
                winograd.backward(input: input, doutput: doutput, dweight: context.gradients + weight.offset,
                                  dinput: dinput, accumulate: accumulate, batch: batch)
            }
            context.gradientsReady?(weight.range)
            return
        }
        if runsPerSample {
            context.timed(.convolutionPerSample) {
                let job = sampleJob(input: input, batch: batch, doutput: doutput, dinput: dinput,
                                    accumulate: accumulate)
                parallelChunks(job.tasks, job) { job, lower, upper in
                    let job = job.load(as: SampleJob.self)
                    for task in lower..<upper { job.backward(task: task) }
                }
                parallelChunks(weight.count, minimumChunk: 1024, job) { job, lower, upper in
                    let job = job.load(as: SampleJob.self)
                    sumPartialsInOrder(job.sampleDweights, parts: job.batch, stride: job.outChannels * job.reduction,
                                       range: lower..<upper)
                }
                parallelChunks(outChannels, minimumChunk: 8, job) { job, lower, upper in
                    job.load(as: SampleJob.self).addSummedPartial(outputChannels: lower..<upper)
                }
            }
            context.gradientsReady?(weight.range)
            return
        }
        let n = batch * outputHeight * outputWidth
        let columns = UnsafePointer(self.columns) ?? input
        context.timed(.gemm) {
            gemm(context.precision, transposeA: false, transposeB: true, m: outChannels, n: reduction, k: n,
                 doutput, lda: n, columns, ldb: n, beta: 1, context.gradients + weight.offset, ldc: reduction)
        }
        if let dinput {
            let w = context.parameters + weight.offset
            // A 1×1 stride-1 convolution's column gradient is the input gradient itself.
            let dcolumns = isPointwise ? dinput : context.workspace!
            context.timed(.gemm) {
                gemm(context.precision, transposeA: true, transposeB: false, m: reduction, n: n, k: outChannels,
                     w, lda: reduction, doutput, ldb: n, beta: isPointwise && accumulate ? 1 : 0, dcolumns, ldc: n)
            }
            if !isPointwise {
                context.timed(.im2col) {
                    if !accumulate {
                        dinput.update(repeating: 0, count: inChannels * batch * geometry.height * geometry.width)
                    }
                    im2col.run(batch: batch, image: dinput, columns: dcolumns, scatter: true)
                }
            }
        }
        context.gradientsReady?(weight.range)
    }

    private func sampleJob(input: UnsafePointer<Float>, batch: Int, output: UnsafeMutablePointer<Float>? = nil,
                           doutput: UnsafePointer<Float>? = nil, dinput: UnsafeMutablePointer<Float>? = nil,
                           accumulate: Bool = false) -> SampleJob {
        let tasks = min(WorkerPool.shared.threads, batch)
        return SampleJob(precision: context.precision, geometry: geometry, batch: batch, tasks: tasks, outChannels: outChannels,
                         weight: context.parameters + weight.offset, dweight: context.gradients + weight.offset,
                         sampleDweights: context.sampleWeightGradients, input: UnsafeMutablePointer(mutating: input),
                         scratch: context.sampleScratch(threads: tasks),
                         scratchPerTask: context.sampleScratchCount, im2col: im2col, output: output,
                         doutput: doutput, dinput: dinput, accumulate: accumulate)
    }
}

/// One thin convolution's work, split into `tasks` runs of consecutive samples, one per compute thread; each
/// task has its own scratch, and samples touch disjoint slices of every other buffer.
private struct SampleJob {
    let precision: Precision
    let geometry: ConvGeometry
    let batch, tasks, outChannels: Int
    let weight, dweight: UnsafeMutablePointer<Float>
    let sampleDweights: UnsafeMutablePointer<Float>  // [B][Cin·k·k][Cout]
    let input: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>  // per task: columns, their gradient, phase planes
    let scratchPerTask: Int
    let im2col: Im2colPlan
    let output: UnsafeMutablePointer<Float>?
    let doutput: UnsafePointer<Float>?
    let dinput: UnsafeMutablePointer<Float>?
    let accumulate: Bool

    var reduction: Int { geometry.channels * geometry.kernel * geometry.kernel }
    var plane: Int { geometry.outputHeight * geometry.outputWidth }
    var n: Int { batch * plane }

    func samples(_ task: Int) -> Range<Int> { chunk(task, of: tasks, count: batch) }

    /// A sample's output positions cut into runs small enough for OpenBLAS's small-matrix kernels, which
    /// take products of up to 100³ multiply-adds (sgemm_small_kernel_permit) without copying operands;
    /// one bigger product (the stem: 16 × 1,408 × 49) runs 1.7× slower through the copying path.
    var positionRun: Int {
        let runs = (outChannels * plane * reduction + 999_999) / 1_000_000
        return (plane + runs - 1) / runs
    }

    /// Sample b's columns [Cin·k·k][Ho·Wo], gathered into the task's scratch.
    func columns(_ b: Int, task: Int) -> UnsafePointer<Float> {
        let columns = scratch + task * scratchPerTask
        im2col.run(batch: batch, sample: b, image: input, columns: columns, phases: columns + 2 * reduction * plane,
                   scatter: false)
        return UnsafePointer(columns)
    }

    /// output[·][b] = weight · columns_b
    func forward(task: Int) {
        let run = positionRun
        for b in samples(task) {
            let columns = self.columns(b, task: task)
            for start in stride(from: 0, to: plane, by: run) {
                gemmOnThisThread(precision, transposeA: false, transposeB: false, m: outChannels, n: min(run, plane - start), k: reduction,
                      weight, lda: reduction, columns + start, ldb: plane, beta: 0, output! + b * plane + start,
                      ldc: n)
            }
        }
    }

    /// Sample b's weight gradient (into its own partial) and input gradient.
    func backward(task: Int) {
        let run = positionRun
        for b in samples(task) {
            let doutput = doutput! + b * plane, columns = self.columns(b, task: task)
            // Transposed, [Cin·k·k][Cout]: OpenBLAS runs this orientation of the thin product faster.
            for start in stride(from: 0, to: plane, by: run) {
                gemmOnThisThread(precision, transposeA: false, transposeB: true, m: reduction, n: outChannels, k: min(run, plane - start),
                      columns + start, lda: plane, doutput + start, ldb: n, beta: start == 0 ? 0 : 1,
                      sampleDweights + b * outChannels * reduction, ldc: outChannels)
            }
            guard let dinput else { continue }
            let dcolumns = scratch + task * scratchPerTask + reduction * plane
            for start in stride(from: 0, to: plane, by: run) {
                gemmOnThisThread(precision, transposeA: true, transposeB: false, m: reduction, n: min(run, plane - start), k: outChannels,
                      weight, lda: reduction, doutput + start, ldb: n, beta: 0, dcolumns + start, ldc: plane)
            }
            let inputPlane = geometry.height * geometry.width
            if !accumulate {
                for c in 0..<geometry.channels {
                    (dinput + (c * batch + b) * inputPlane).update(repeating: 0, count: inputPlane)
                }
            }
            im2col.run(batch: batch, sample: b, image: dinput, columns: dcolumns, phases: dcolumns + reduction * plane,
                       scatter: true)
        }
    }

    /// dweight[o][r] += partial_0[r][o], the summed partial transposed back to PyTorch's layout.
    func addSummedPartial(outputChannels: Range<Int>) {
        for o in outputChannels {
            for r in 0..<reduction { dweight[o * reduction + r] += sampleDweights[r * outChannels + o] }
        }
    }
}
