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

/// im2col and its adjoint col2im in one walker, so the index arithmetic exists once.
///   gather:  columns[(c·k + ky)·k + kx][b][oy][ox] = image[c][b][oy·s − p + ky][ox·s − p + kx]  (0 in the padding)
///   scatter: image[...] += columns[...]  (the adjoint; the caller zeroes `image` first unless accumulating)
/// Column rows are independent when gathering; when scattering, the k·k rows of one channel add into the
/// same image, so the work is split by whole channels. `tapMasks` (see `PaddingMasks`) switches on the fast
/// path for stride-1 convolutions that keep the map size.
func im2col(_ g: ConvGeometry, batch: Int, image: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>,
            scatter: Bool, tapMasks: UnsafePointer<UInt32>? = nil) {
    let job = Im2colJob(geometry: g, batch: batch, image: image, columns: columns, tapMasks: tapMasks)
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

private struct Im2colJob {
    let geometry: ConvGeometry
    let batch: Int
    let image, columns: UnsafeMutablePointer<Float>
    let tapMasks: UnsafePointer<UInt32>?
}

private func im2colRows(_ job: Im2colJob, scatter: Bool, rows columnRows: Range<Int>) {
    let g = job.geometry, batch = job.batch
    let outH = g.outputHeight, outW = g.outputWidth, k = g.kernel, s = g.stride, p = g.padding
    let plane = g.height * g.width
    for row in columnRows {
        let c = row / (k * k), ky = row / k % k, kx = row % k
        let column = job.columns + row * batch * outH * outW
        if let tapMasks = job.tapMasks {
            sameConvolutionRow(column, job.image + c * batch * plane, mask: tapMasks + (ky * k + kx) * plane,
                               batch: batch, plane: plane, shift: (ky - p) * g.width + (kx - p), scatter: scatter)
            continue
        }
        let rows = validOutputRange(offset: ky, stride: s, padding: p, inputSize: g.height, outputSize: outH)
        let cols = validOutputRange(offset: kx, stride: s, padding: p, inputSize: g.width, outputSize: outW)
        var output = column
        for b in 0..<batch {
            let channelImage = job.image + (c * batch + b) * plane
            for oy in 0..<outH {
                defer { output += outW }
                guard rows.contains(oy) else {
                    if !scatter { for ox in 0..<outW { output[ox] = 0 } }
                    continue
                }
                // Row of the image this output row reads, shifted so index ox·s addresses it. Plain loops
                // rather than memcpy/memset: rows are short (a few to a few dozen floats).
                let source = channelImage + (oy * s - p + ky) * g.width + (kx - p)
                if scatter {
                    for ox in cols { source[ox * s] += output[ox] }
                } else {
                    for ox in 0..<cols.lowerBound { output[ox] = 0 }
                    for ox in cols { output[ox] = source[ox * s] }
                    for ox in cols.upperBound..<outW { output[ox] = 0 }
                }
            }
        }
    }
}

/// A stride-1 convolution whose output has the input's size (3×3 with padding 1, the bulk of a ResNet):
/// its column row for one tap is the channel's whole [B][H][W] block shifted by one flat offset, so it is
/// one branch-free, vectorisable pass instead of B·H short rows. Where the tap reads padding the flat
/// shift would reach a neighbouring row or image instead; the tap's mask (per [H][W] position, all ones
/// or all zeros) is ANDed into the float's bits there, giving +0, and the flat range is clipped so nothing
/// outside the channel is touched. Loads are unconditional (and in range), so the loops vectorise; a
/// `mask ? load : 0` select would make the load conditional and keep them scalar.
@inline(__always)
private func sameConvolutionRow(_ column: UnsafeMutablePointer<Float>, _ channel: UnsafeMutablePointer<Float>,
                                mask: UnsafePointer<UInt32>, batch: Int, plane: Int, shift: Int, scatter: Bool) {
    let count = batch * plane
    let lower = min(count, max(0, -shift)), upper = max(lower, min(count, count - shift))
    for b in 0..<batch {
        let base = b * plane
        let first = min(plane, max(0, lower - base)), last = max(first, min(plane, upper - base))
        let column = column + base, source = channel + shift + base
        if scatter {
            for i in first..<last { source[i] += Float(bitPattern: column[i].bitPattern & mask[i]) }
        } else {
            for i in 0..<first { column[i] = 0 }
            for i in first..<last { column[i] = Float(bitPattern: source[i].bitPattern & mask[i]) }
            for i in last..<plane { column[i] = 0 }
        }
    }
}

/// For a stride-1 convolution that keeps the map size: per kernel tap (ky, kx), which [H][W] output
/// positions read the image (all ones) rather than padding (0).
func paddingMasks(_ g: ConvGeometry) -> UnsafeMutablePointer<UInt32>? {
    guard g.stride == 1, g.outputHeight == g.height, g.outputWidth == g.width, g.kernel > 1 else { return nil }
    let plane = g.height * g.width
    let masks = UnsafeMutablePointer<UInt32>.allocate(capacity: g.kernel * g.kernel * plane)
    for ky in 0..<g.kernel {
        let rows = validOutputRange(offset: ky, stride: 1, padding: g.padding, inputSize: g.height, outputSize: g.height)
        for kx in 0..<g.kernel {
            let cols = validOutputRange(offset: kx, stride: 1, padding: g.padding, inputSize: g.width, outputSize: g.width)
            for oy in 0..<g.height {
                for ox in 0..<g.width {
                    let readsImage = rows.contains(oy) && cols.contains(ox)
                    masks[(ky * g.kernel + kx) * plane + oy * g.width + ox] = readsImage ? ~0 : 0
                }
            }
        }
    }
    return masks
}

/// 2-D convolution without bias (every ResNet convolution feeds a BatchNorm, which supplies the shift).
/// Whole batch in one GEMM over channel-major activations:
///   output[Cout][B·Ho·Wo] = weight[Cout][Cin·k·k] · columns[Cin·k·k][B·Ho·Wo]
/// A 1×1 stride-1 convolution is that GEMM on the input itself, with no im2col. Other convolutions keep
/// their forward columns for backward's weight gradient, trading memory for one im2col pass fewer per
/// step; the column gradient goes through the network's shared workspace.
final class Conv2d {
    let geometry: ConvGeometry
    let outChannels: Int
    let weight: TensorSlot  // [Cout][Cin][k][k], PyTorch's layout
    private let context: NetworkContext
    private let columns: UnsafeMutablePointer<Float>?  // [Cin·k·k][B][Ho][Wo] of the last forward
    private let tapMasks: UnsafeMutablePointer<UInt32>?  // see `paddingMasks`

    var inChannels: Int { geometry.channels }
    var outputHeight: Int { geometry.outputHeight }
    var outputWidth: Int { geometry.outputWidth }
    private var reduction: Int { geometry.channels * geometry.kernel * geometry.kernel }
    private var isPointwise: Bool { columns == nil }

    init(_ context: NetworkContext, name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int,
         padding: Int, inputHeight: Int, inputWidth: Int, maxBatch: Int) throws {
        geometry = ConvGeometry(channels: inChannels, height: inputHeight, width: inputWidth,
                                kernel: kernel, stride: stride, padding: padding)
        try require(geometry.outputHeight >= 1 && geometry.outputWidth >= 1, "input size of \(name)",
                    "\(inputHeight)x\(inputWidth)", "smaller than its \(kernel)x\(kernel) kernel")
        self.outChannels = outChannels
        self.context = context
        weight = context.reserveParameter(name + ".weight", shape: [outChannels, inChannels, kernel, kernel])
        let isPointwise = kernel == 1 && stride == 1 && padding == 0
        let columnCount = inChannels * kernel * kernel * maxBatch * geometry.outputHeight * geometry.outputWidth
        columns = isPointwise ? nil : .allocate(capacity: columnCount)
        columns?.initialize(repeating: 0, count: columnCount)
        if !isPointwise { context.reserveWorkspace(columnCount) }
        tapMasks = paddingMasks(geometry)
    }

    deinit {
        columns?.deallocate()
        tapMasks?.deallocate()
    }

    /// kaiming_normal_(mode="fan_out", nonlinearity="relu"), as torchvision initialises ResNet convolutions.
    func initialize(_ rng: inout Xoshiro256) {
        let standardDeviation = (2.0 / Double(outChannels * geometry.kernel * geometry.kernel)).squareRoot()
        let w = context.parameters + weight.offset
        for i in 0..<weight.count { w[i] = Float(rng.nextGaussian() * standardDeviation) }
    }

    /// Multiply-adds ×2 of one sample's forward pass.
    var forwardFlopsPerSample: Int { 2 * outChannels * reduction * outputHeight * outputWidth }

    /// input [Cin][B][H][W] → output [Cout][B][Ho][Wo]
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        let n = batch * outputHeight * outputWidth
        if let columns {
            context.timed(.im2col) {
                im2col(geometry, batch: batch, image: UnsafeMutablePointer(mutating: input), columns: columns,
                       scatter: false, tapMasks: tapMasks)
            }
        }
        let columns = UnsafePointer(self.columns) ?? input
        context.timed(.gemm) {
            gemm(transposeA: false, transposeB: false, m: outChannels, n: n, k: reduction,
                 context.parameters + weight.offset, lda: reduction, columns, ldb: n, beta: 0, output, ldc: n)
        }
    }

    /// doutput [Cout][B][Ho][Wo] → dweight += doutput·columnsᵀ, and if `dinput` is given
    /// dinput [Cin][B][H][W] (= or += when `accumulate`) col2im(weightᵀ·doutput).
    /// Uses the columns of the last forward, so it must follow the forward of the same input.
    func backward(input: UnsafePointer<Float>, doutput: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>?,
                  accumulate: Bool, batch: Int) {
        let n = batch * outputHeight * outputWidth
        let columns = UnsafePointer(self.columns) ?? input
        context.timed(.gemm) {
            gemm(transposeA: false, transposeB: true, m: outChannels, n: reduction, k: n,
                 doutput, lda: n, columns, ldb: n, beta: 1, context.gradients + weight.offset, ldc: reduction)
        }
        if let dinput {
            let w = context.parameters + weight.offset
            // A 1×1 stride-1 convolution's column gradient is the input gradient itself.
            let dcolumns = isPointwise ? dinput : context.workspace!
            context.timed(.gemm) {
                gemm(transposeA: true, transposeB: false, m: reduction, n: n, k: outChannels,
                     w, lda: reduction, doutput, ldb: n, beta: isPointwise && accumulate ? 1 : 0, dcolumns, ldc: n)
            }
            if !isPointwise {
                context.timed(.im2col) {
                    if !accumulate {
                        dinput.update(repeating: 0, count: inChannels * batch * geometry.height * geometry.width)
                    }
                    im2col(geometry, batch: batch, image: dinput, columns: dcolumns, scatter: true, tapMasks: tapMasks)
                }
            }
        }
        context.gradientsReady?(weight.range)
    }
}
