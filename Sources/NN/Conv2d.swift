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
/// same image, so the work is split by whole channels.
func im2col(_ g: ConvGeometry, batch: Int, image: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>,
            scatter: Bool) {
    let job = Im2colJob(geometry: g, batch: batch, image: image, columns: columns)
    if scatter {
        parallelChunks(g.channels, job) { job, lower, upper in
            let job = job.load(as: Im2colJob.self), taps = job.geometry.kernel * job.geometry.kernel
            im2colRows(job.geometry, batch: job.batch, image: job.image, columns: job.columns, scatter: true,
                       rows: (lower * taps)..<(upper * taps))
        }
    } else {
        parallelChunks(g.channels * g.kernel * g.kernel, minimumChunk: 4, job) { job, lower, upper in
            let job = job.load(as: Im2colJob.self)
            im2colRows(job.geometry, batch: job.batch, image: job.image, columns: job.columns, scatter: false,
                       rows: lower..<upper)
        }
    }
}

private struct Im2colJob {
    let geometry: ConvGeometry
    let batch: Int
    let image, columns: UnsafeMutablePointer<Float>
}

private func im2colRows(_ g: ConvGeometry, batch: Int, image: UnsafeMutablePointer<Float>,
                        columns: UnsafeMutablePointer<Float>, scatter: Bool, rows columnRows: Range<Int>) {
    let outH = g.outputHeight, outW = g.outputWidth, k = g.kernel, s = g.stride, p = g.padding
    let plane = g.height * g.width
    let isSame = s == 1 && outH == g.height && outW == g.width
    for row in columnRows {
        let c = row / (k * k), ky = row / k % k, kx = row % k
        let rows = validOutputRange(offset: ky, stride: s, padding: p, inputSize: g.height, outputSize: outH)
        let cols = validOutputRange(offset: kx, stride: s, padding: p, inputSize: g.width, outputSize: outW)
        let column = columns + row * batch * outH * outW
        if isSame {
            sameConvolutionRow(column, image + c * batch * plane, count: batch * plane,
                               shift: (ky - p) * g.width + (kx - p), scatter: scatter) {
                zeroPaddingTaps(column, batch: batch, height: outH, width: outW, rows: rows, cols: cols)
            }
            continue
        }
        var output = column
        for b in 0..<batch {
            let channelImage = image + (c * batch + b) * plane
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
/// one contiguous copy (or add) instead of B·H short rows. The taps that land in the padding would read a
/// neighbouring row or image through the flat shift; `zeroPadding` clears them (before the add when
/// scattering, since their gradient must go nowhere).
@inline(__always)
private func sameConvolutionRow(_ column: UnsafeMutablePointer<Float>, _ channel: UnsafeMutablePointer<Float>,
                                count: Int, shift: Int, scatter: Bool, zeroPadding: () -> Void) {
    let lower = min(count, max(0, -shift)), upper = max(lower, min(count, count - shift))
    let source = channel + shift
    if scatter {
        zeroPadding()
        for i in lower..<upper { source[i] += column[i] }
    } else {
        for i in 0..<lower { column[i] = 0 }
        for i in lower..<upper { column[i] = source[i] }
        for i in upper..<count { column[i] = 0 }
        zeroPadding()
    }
}

/// Zeroes the entries of a [B][H][W] column row whose tap reads padding: rows outside `rows`, and columns
/// outside `cols` of the others.
private func zeroPaddingTaps(_ column: UnsafeMutablePointer<Float>, batch: Int, height: Int, width: Int,
                             rows: Range<Int>, cols: Range<Int>) {
    for b in 0..<batch {
        for oy in 0..<height {
            let line = column + (b * height + oy) * width
            if rows.contains(oy) {
                for ox in 0..<cols.lowerBound { line[ox] = 0 }
                for ox in cols.upperBound..<width { line[ox] = 0 }
            } else {
                for ox in 0..<width { line[ox] = 0 }
            }
        }
    }
}

/// 2-D convolution without bias (every ResNet convolution feeds a BatchNorm, which supplies the shift).
/// Whole batch in one GEMM over channel-major activations:
///   output[Cout][B·Ho·Wo] = weight[Cout][Cin·k·k] · columns[Cin·k·k][B·Ho·Wo]
/// A 1×1 stride-1 convolution is that GEMM on the input itself, with no im2col. Other convolutions keep
/// their forward columns for backward's weight gradient (memory for one im2col pass less per step); the
/// column gradient goes through the network's shared workspace.
final class Conv2d {
    let geometry: ConvGeometry
    let outChannels: Int
    let weight: TensorSlot  // [Cout][Cin][k][k], PyTorch's layout
    private let context: NetworkContext
    private let columns: UnsafeMutablePointer<Float>?  // [Cin·k·k][B][Ho][Wo] of the last forward

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
    }

    deinit { columns?.deallocate() }

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
                       scatter: false)
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
                    im2col(geometry, batch: batch, image: dinput, columns: dcolumns, scatter: true)
                }
            }
        }
        context.gradientsReady?(weight.range)
    }
}
