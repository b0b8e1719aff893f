/// Floor division that is correct for negative numerators (Swift's `/` truncates toward zero).
@inline(__always)
private func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// The output rows/columns o with 0 ≤ o·stride − padding + offset < inputSize, clipped to 0..<outputSize:
/// the positions where a kernel tap reads the image rather than zero padding.
@inline(__always)
private func validOutputRange(offset: Int, stride: Int, padding: Int, inputSize: Int, outputSize: Int) -> Range<Int> {
    let lower = max(0, floorDivide(padding - offset + stride - 1, stride))
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
    let taps = g.kernel * g.kernel
    if scatter {
        parallelChunks(g.channels) { channels in
            im2colRows(g, batch: batch, image: image, columns: columns, scatter: true,
                       rows: (channels.lowerBound * taps)..<(channels.upperBound * taps))
        }
    } else {
        parallelChunks(g.channels * taps, minimumChunk: 4) { rows in
            im2colRows(g, batch: batch, image: image, columns: columns, scatter: false, rows: rows)
        }
    }
}

private func im2colRows(_ g: ConvGeometry, batch: Int, image: UnsafeMutablePointer<Float>,
                        columns: UnsafeMutablePointer<Float>, scatter: Bool, rows columnRows: Range<Int>) {
    let outH = g.outputHeight, outW = g.outputWidth, k = g.kernel, s = g.stride, p = g.padding
    let plane = g.height * g.width
    for row in columnRows {
        let c = row / (k * k), ky = row / k % k, kx = row % k
        let rows = validOutputRange(offset: ky, stride: s, padding: p, inputSize: g.height, outputSize: outH)
        let cols = validOutputRange(offset: kx, stride: s, padding: p, inputSize: g.width, outputSize: outW)
        var column = columns + row * batch * outH * outW
        for b in 0..<batch {
            let channelImage = image + (c * batch + b) * plane
            for oy in 0..<outH {
                defer { column += outW }
                guard rows.contains(oy) else {
                    if !scatter { for ox in 0..<outW { column[ox] = 0 } }
                    continue
                }
                // Row of the image this output row reads, shifted so index ox·s addresses it. Plain loops
                // rather than memcpy/memset: rows are short (a few to a few dozen floats).
                let source = channelImage + (oy * s - p + ky) * g.width + (kx - p)
                if scatter {
                    for ox in cols { source[ox * s] += column[ox] }
                } else {
                    for ox in 0..<cols.lowerBound { column[ox] = 0 }
                    if s == 1 {
                        for ox in cols { column[ox] = source[ox] }
                    } else {
                        for ox in cols { column[ox] = source[ox * s] }
                    }
                    for ox in cols.upperBound..<outW { column[ox] = 0 }
                }
            }
        }
    }
}

/// 2-D convolution without bias (every ResNet convolution feeds a BatchNorm, which supplies the shift).
/// Whole batch in one GEMM over channel-major activations:
///   output[Cout][B·Ho·Wo] = weight[Cout][Cin·k·k] · columns[Cin·k·k][B·Ho·Wo]
/// A 1×1 stride-1 convolution is that GEMM on the input itself, with no im2col.
final class Conv2d {
    let geometry: ConvGeometry
    let outChannels: Int
    let weight: TensorSlot  // [Cout][Cin][k][k], PyTorch's layout
    private let context: NetworkContext

    var inChannels: Int { geometry.channels }
    var outputHeight: Int { geometry.outputHeight }
    var outputWidth: Int { geometry.outputWidth }
    private var reduction: Int { geometry.channels * geometry.kernel * geometry.kernel }
    private var isPointwise: Bool { geometry.kernel == 1 && geometry.stride == 1 && geometry.padding == 0 }

    init(_ context: NetworkContext, name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int,
         padding: Int, inputHeight: Int, inputWidth: Int, maxBatch: Int) throws {
        geometry = ConvGeometry(channels: inChannels, height: inputHeight, width: inputWidth,
                                kernel: kernel, stride: stride, padding: padding)
        try require(geometry.outputHeight >= 1 && geometry.outputWidth >= 1, "input size of \(name)",
                    "\(inputHeight)x\(inputWidth)", "smaller than its \(kernel)x\(kernel) kernel")
        self.outChannels = outChannels
        self.context = context
        weight = context.reserveParameter(name + ".weight", shape: [outChannels, inChannels, kernel, kernel])
        if !isPointwise {
            context.reserveWorkspace(reduction * maxBatch * geometry.outputHeight * geometry.outputWidth)
        }
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
        let columns = isPointwise ? input : gatherColumns(input, batch: batch)
        context.timed(.gemm) {
            gemm(transposeA: false, transposeB: false, m: outChannels, n: n, k: reduction,
                 context.parameters + weight.offset, lda: reduction, columns, ldb: n, beta: 0, output, ldc: n)
        }
    }

    /// doutput [Cout][B][Ho][Wo] → dweight += doutput·columnsᵀ, and if `dinput` is given
    /// dinput [Cin][B][H][W] (= or += when `accumulate`) col2im(weightᵀ·doutput).
    func backward(input: UnsafePointer<Float>, doutput: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>?,
                  accumulate: Bool, batch: Int) {
        let n = batch * outputHeight * outputWidth
        let columns = isPointwise ? input : gatherColumns(input, batch: batch)
        context.timed(.gemm) {
            gemm(transposeA: false, transposeB: true, m: outChannels, n: reduction, k: n,
                 doutput, lda: n, columns, ldb: n, beta: 1, context.gradients + weight.offset, ldc: reduction)
        }
        if let dinput {
            let w = context.parameters + weight.offset
            // A 1×1 stride-1 convolution's column gradient is the input gradient itself.
            let dcolumns = isPointwise ? dinput : context.workspace!  // the columns are no longer needed
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

    private func gatherColumns(_ input: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        context.timed(.im2col) {
            im2col(geometry, batch: batch, image: UnsafeMutablePointer(mutating: input), columns: context.workspace,
                   scatter: false)
        }
        return UnsafePointer(context.workspace)
    }
}
