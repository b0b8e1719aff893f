/// Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
/// Networks", 2016) for the 3×3 stride-1 convolutions with padding 1, most of a ResNet's multiply-adds.
/// Each 2×2 block of outputs (a "tile") comes from the 4×4 input patch d around it:
///   Y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A,
/// 16 multiplies per tile and input channel where im2col's GEMM does 36. The channel sums are 16 GEMMs,
/// one per position ξ of the 4×4 transformed tile:
///   M[ξ] (tiles × Cout) = V[ξ] (tiles × Cin) · U[ξ]ᵀ (Cin × Cout),   U = G g Gᵀ,  V = Bᵀ d B.
/// Backward is the exact adjoint of that computation:
///   dM = A dY Aᵀ,  dU[ξ] = dM[ξ]ᵀ·V[ξ],  dV[ξ] = dM[ξ]·U[ξ],  d(input) = Σ_tiles B dV Bᵀ,  d(weight) = Gᵀ dU G.
///
/// The transforms work channel-last: a sample's planes are first transposed to [y][x][channel], so every
/// tile's arithmetic runs on vectors of 16 channels (the maps are too narrow to vectorise along a row),
/// and V and M are [ξ][tile][channel] matrices, the orientation OpenBLAS's small kernels run fastest.
/// Samples go through in small groups, transforms and GEMMs back to back in a per-thread scratch that
/// stays in cache (the transformed tiles are 4× the input; im2col's columns are 9×). Each group's dU is a
/// partial of its own, summed in group order, so the bits do not depend on the thread count.
final class WinogradConvolution {
    let geometry: ConvGeometry
    let outChannels: Int
    /// Samples transformed and multiplied together, so that small maps still give GEMMs of about 64
    /// tiles (OpenBLAS's small-matrix kernels run near their in-cache speed from there). A power of two,
    /// so a batch of 32 splits evenly over threads; fixed by the geometry alone, so the groups, and the
    /// order their weight-gradient partials are summed in, do not depend on the thread count.
    let groupSize: Int
    private let shape: WinogradShape
    /// U[ξ][Cout][Cin] and Uᵀ[ξ][Cin][Cout] of the last forward's weights; backward reuses them.
    private let transformedWeights: UnsafeMutablePointer<Float>
    /// Where pixel y·W + x of a plane sits, in pixels, in the padded input plane ((y + 1)·paddedWidth + x + 1)
    /// and then in the output plane of whole tiles (y·2·tileColumns + x).
    private let pixelOffsets: UnsafeMutablePointer<Int>
    private let context: NetworkContext

    init(_ context: NetworkContext, geometry g: ConvGeometry, outChannels: Int, maxBatch: Int) {
        precondition(g.kernel == 3 && g.stride == 1 && g.padding == 1, "F(2×2, 3×3) needs a 3×3/1 'same' convolution")
        geometry = g
        self.outChannels = outChannels
        self.context = context
        let tiles = ((g.height + 1) / 2) * ((g.width + 1) / 2)
        let wanted = max(1, 64 / tiles)
        groupSize = min(8, 1 << (Int.bitWidth - 1 - wanted.leadingZeroBitCount))  // largest power of two ≤ wanted
        shape = WinogradShape(geometry: g, outChannels: outChannels, groupSize: groupSize)
        transformedWeights = .allocate(capacity: 2 * 16 * outChannels * g.channels)
        transformedWeights.initialize(repeating: 0, count: 2 * 16 * outChannels * g.channels)
        pixelOffsets = .allocate(capacity: 2 * shape.plane)
        for y in 0..<g.height {
            for x in 0..<g.width {
                pixelOffsets[y * g.width + x] = (y + 1) * shape.paddedWidth + x + 1
                pixelOffsets[shape.plane + y * g.width + x] = y * 2 * shape.tileColumns + x
            }
        }
        let groups = (maxBatch + groupSize - 1) / groupSize
        context.reserveSampleWeightGradients(groups * 16 * outChannels * g.channels)
        context.reserveSampleScratch(shape.scratchPerTask)
    }

    deinit {
        transformedWeights.deallocate()
        pixelOffsets.deallocate()
    }

    /// Multiply-adds ×2 of one sample's 16 tile products (the transforms are additions).
    var forwardFlopsPerSample: Int { 2 * 16 * shape.tilesPerSample * shape.weightPairs }

    /// input [Cin][B][H][W] → output [Cout][B][H][W]
    func forward(weight: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                 batch: Int) {
        let job = makeJob(weight: weight, batch: batch, input: input, output: output)
        parallelChunks(outChannels * geometry.channels, minimumChunk: 256, job) { job, lower, upper in
            job.load(as: WinogradJob.self).transformWeights(pairs: lower..<upper)
        }
        parallelChunks(16, job) { job, lower, upper in
            job.load(as: WinogradJob.self).transposeTransformedWeights(positions: lower..<upper)
        }
        parallelChunks(job.tasks, job) { job, lower, upper in
            let job = job.load(as: WinogradJob.self)
            for task in lower..<upper { job.forward(task: task) }
        }
    }

    /// doutput [Cout][B][H][W] → dweight += its gradient, and if `dinput` is given dinput (= or += when
    /// `accumulate`) [Cin][B][H][W]. Must follow the forward of the same weights (it reuses their transform).
    func backward(input: UnsafePointer<Float>, doutput: UnsafePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                  dinput: UnsafeMutablePointer<Float>?, accumulate: Bool, batch: Int) {
        let job = makeJob(weight: nil, batch: batch, input: input, doutput: doutput, dinput: dinput,
                          accumulate: accumulate, dweight: dweight)
        parallelChunks(job.tasks, job) { job, lower, upper in
            let job = job.load(as: WinogradJob.self)
            for task in lower..<upper { job.backward(task: task) }
        }
        parallelChunks(16 * outChannels * geometry.channels, minimumChunk: 1024, job) { job, lower, upper in
            let job = job.load(as: WinogradJob.self)
            sumPartialsInOrder(job.partials, parts: job.groups, stride: 16 * job.shape.weightPairs, range: lower..<upper)
        }
        parallelChunks(outChannels, job) { job, lower, upper in
            job.load(as: WinogradJob.self).addWeightGradient(outputChannels: lower..<upper)
        }
    }

    private func makeJob(weight: UnsafePointer<Float>?, batch: Int, input: UnsafePointer<Float>,
                         output: UnsafeMutablePointer<Float>? = nil, doutput: UnsafePointer<Float>? = nil,
                         dinput: UnsafeMutablePointer<Float>? = nil, accumulate: Bool = false,
                         dweight: UnsafeMutablePointer<Float>? = nil) -> WinogradJob {
        let groups = (batch + groupSize - 1) / groupSize
        let tasks = min(WorkerPool.shared.threads, groups)
        return WinogradJob(precision: context.precision, shape: shape, batch: batch, groups: groups, tasks: tasks, weight: weight,
                           transformed: transformedWeights, pixelOffsets: pixelOffsets,
                           partials: context.sampleWeightGradients,
                           scratch: context.sampleScratch(threads: tasks), scratchPerTask: context.sampleScratchCount,
                           input: input, output: output, doutput: doutput, dinput: dinput, accumulate: accumulate,
                           dweight: dweight)
    }
}

/// Sizes of one Winograd convolution's tiles and channel-last buffers.
private struct WinogradShape {
    let inChannels, outChannels, height, width, groupSize: Int
    let tileRows, tileColumns: Int
    /// Channel counts rounded up to whole 16-float vectors: the row length of channel-last buffers.
    let inLanes, outLanes: Int

    init(geometry g: ConvGeometry, outChannels: Int, groupSize: Int) {
        (inChannels, self.outChannels, height, width, self.groupSize) = (g.channels, outChannels, g.height, g.width,
                                                                         groupSize)
        (tileRows, tileColumns) = ((g.height + 1) / 2, (g.width + 1) / 2)
        (inLanes, outLanes) = ((g.channels + 15) / 16 * 16, (outChannels + 15) / 16 * 16)
    }

    var tilesPerSample: Int { tileRows * tileColumns }
    var plane: Int { height * width }
    /// The zero-padded input plane of whole tiles, channel-last: [2·tileRows + 2][2·tileColumns + 2][inLanes].
    var paddedWidth: Int { 2 * tileColumns + 2 }
    var paddedCount: Int { (2 * tileRows + 2) * paddedWidth * inLanes }
    /// The output plane of whole tiles, channel-last: [2·tileRows][2·tileColumns][outLanes].
    var outputCount: Int { 4 * tilesPerSample * outLanes }
    var weightPairs: Int { outChannels * inChannels }

    /// Per task: V and dV [16][tiles][inLanes], M or dM [16][tiles][outLanes] for a full group's tiles, the
    /// padded input plane and the output plane.
    var scratchPerTask: Int {
        16 * groupSize * tilesPerSample * (2 * inLanes + outLanes) + paddedCount + outputCount
    }
}

/// One convolution's work, split into `tasks` runs of consecutive sample groups, one per compute thread;
/// each task has its own scratch, and groups touch disjoint slices of every other buffer.
private struct WinogradJob {
    let precision: Precision
    let shape: WinogradShape
    let batch, groups, tasks: Int
    let weight: UnsafePointer<Float>?  // [Cout][Cin][3][3]
    let transformed: UnsafeMutablePointer<Float>  // U [16][Cout][Cin], then Uᵀ [16][Cin][Cout]
    let pixelOffsets: UnsafePointer<Int>  // see `WinogradConvolution.pixelOffsets`
    let partials: UnsafeMutablePointer<Float>  // dU per group: [groups][16][Cout][Cin]
    let scratch: UnsafeMutablePointer<Float>
    let scratchPerTask: Int
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>?
    let doutput: UnsafePointer<Float>?
    let dinput: UnsafeMutablePointer<Float>?
    let accumulate: Bool
    let dweight: UnsafeMutablePointer<Float>?

    func groups(_ task: Int) -> Range<Int> { chunk(task, of: tasks, count: groups) }
    func samples(_ group: Int) -> Range<Int> {
        (group * shape.groupSize)..<min(batch, (group + 1) * shape.groupSize)
    }

    private struct Scratch {
        let v, m, dv, padded, outputPlane: UnsafeMutablePointer<Float>
    }

    private func scratch(_ task: Int) -> Scratch {
        let tiles = 16 * shape.groupSize * shape.tilesPerSample, v = scratch + task * scratchPerTask
        let m = v + tiles * shape.inLanes, dv = m + tiles * shape.outLanes, padded = dv + tiles * shape.inLanes
        return Scratch(v: v, m: m, dv: dv, padded: padded, outputPlane: padded + shape.paddedCount)
    }

    /// U[ξ][o][c] = (G g_oc Gᵀ)[ξ] for the kernel pairs p = o·Cin + c in `pairs`, 16 pairs at a time. Their
    /// taps are first copied tap-major, [9][pairs], into the Uᵀ half (free until
    /// `transposeTransformedWeights`), so the transform reads whole vectors instead of gathering taps 9 apart.
    func transformWeights(pairs: Range<Int>) {
        let count = shape.weightPairs, taps = transformed + 16 * count
        for p in pairs {
            for k in 0..<9 { taps[k * count + p] = weight![p * 9 + k] }
        }
        for p in stride(from: pairs.lowerBound, to: pairs.upperBound, by: 16) {
            let lanes = min(16, pairs.upperBound - p)
            storeKernelTransform(taps: { k in loadVector(taps + k * count + p, count: lanes) }, count: lanes,
                                 into: transformed + p, positionStride: count)
        }
    }

    /// Uᵀ[ξ][c][o] = U[ξ][o][c], in 8×8 blocks transposed in registers.
    func transposeTransformedWeights(positions: Range<Int>) {
        let cin = shape.inChannels, cout = shape.outChannels, count = shape.weightPairs
        for xi in positions {
            let u = transformed + xi * count, ut = transformed + (16 + xi) * count
            for o in stride(from: 0, to: cout, by: 8) {
                for c in stride(from: 0, to: cin, by: 8) {
                    let (outputs, inputs) = (min(8, cout - o), min(8, cin - c))
                    let block = TransposeBlock { i in i < outputs ? loadVector(u + (o + i) * cin + c, count: inputs) : Row() }
                        .transposed
                    block.forEach(upTo: inputs) { j, column in storeVector(column, ut + (c + j) * cout + o, count: outputs) }
                }
            }
        }
    }

    func forward(task: Int) {
        let s = scratch(task), cin = shape.inChannels, cout = shape.outChannels
        for group in groups(task) {
            let samples = self.samples(group), n = samples.count * shape.tilesPerSample
            transformInputs(samples, s)
            let ut = transformed + 16 * shape.weightPairs
            for xi in 0..<16 {
                gemmOnThisThread(precision, transposeA: false, transposeB: false, m: n, n: cout, k: cin,
                      s.v + xi * n * shape.inLanes, lda: shape.inLanes, ut + xi * shape.weightPairs, ldb: cout,
                      beta: 0, s.m + xi * n * shape.outLanes, ldc: shape.outLanes)
            }
            for (slot, b) in samples.enumerated() {
                transformOutput(s.m + slot * shape.tilesPerSample * shape.outLanes, positionStride: n * shape.outLanes,
                                into: s.outputPlane)
                transposeOut(s.outputPlane, into: output! + b * shape.plane, batch: batch)
            }
        }
    }

    /// V of a group's samples: each sample's input, channel-last and padded, through Bᵀ·d·B.
    private func transformInputs(_ samples: Range<Int>, _ s: Scratch) {
        let n = samples.count * shape.tilesPerSample
        for (slot, b) in samples.enumerated() {
            transposeIn(input + b * shape.plane, batch: batch, into: s.padded)
            transformInput(s.padded, into: s.v + slot * shape.tilesPerSample * shape.inLanes,
                           positionStride: n * shape.inLanes)
        }
    }

    /// Each group's weight-gradient partial and, if asked, its input gradient. V is transformed again rather
    /// than kept from forward, like the thin im2col path's columns: kept, it would be 4× every convolution's
    /// input in memory and out of cache by backward; again, it costs about 2% of the step.
    func backward(task: Int) {
        let s = scratch(task), cin = shape.inChannels, cout = shape.outChannels
        for group in groups(task) {
            let samples = self.samples(group), n = samples.count * shape.tilesPerSample
            transformInputs(samples, s)
            for (slot, b) in samples.enumerated() {
                transposeGradientIn(doutput! + b * shape.plane, batch: batch, into: s.outputPlane)
                transformOutputGradient(s.outputPlane, into: s.m + slot * shape.tilesPerSample * shape.outLanes,
                                        positionStride: n * shape.outLanes)
            }
            let partial = partials + group * 16 * shape.weightPairs
            for xi in 0..<16 {
                gemmOnThisThread(precision, transposeA: true, transposeB: false, m: cout, n: cin, k: n,
                      s.m + xi * n * shape.outLanes, lda: shape.outLanes, s.v + xi * n * shape.inLanes,
                      ldb: shape.inLanes, beta: 0, partial + xi * shape.weightPairs, ldc: cin)
            }
            guard let dinput else { continue }
            for xi in 0..<16 {
                gemmOnThisThread(precision, transposeA: false, transposeB: false, m: n, n: cin, k: cout,
                      s.m + xi * n * shape.outLanes, lda: shape.outLanes, transformed + xi * shape.weightPairs,
                      ldb: cin, beta: 0, s.dv + xi * n * shape.inLanes, ldc: shape.inLanes)
            }
            for (slot, b) in samples.enumerated() {
                transformInputGradient(s.dv + slot * shape.tilesPerSample * shape.inLanes,
                                       positionStride: n * shape.inLanes, into: s.padded)
                transposeGradientOut(s.padded, into: dinput + b * shape.plane, batch: batch)
            }
        }
    }

    /// dweight[o][c] += Gᵀ dU[o][c] G, from the summed partial dU[ξ][o][c], 16 input channels at a time.
    func addWeightGradient(outputChannels: Range<Int>) {
        let cin = shape.inChannels, stride = shape.weightPairs
        for o in outputChannels {
            for c in Swift.stride(from: 0, to: cin, by: 16) {
                let u = partials + o * cin + c, count = min(16, cin - c)
                // Per row r of dU, Gᵀ along it (4 → 3) gives the kernel columns; then Gᵀ down each column.
                func row(_ r: Int) -> (Lane, Lane, Lane) {
                    let u0: Lane = loadVector(u + 4 * r * stride, count: count), u1: Lane = loadVector(u + (4 * r + 1) * stride, count: count)
                    let u2: Lane = loadVector(u + (4 * r + 2) * stride, count: count)
                    let u3: Lane = loadVector(u + (4 * r + 3) * stride, count: count)
                    return adjointOfG(u0, u1, u2, u3)
                }
                let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
                let g = dweight! + (o * cin + c) * 9
                let column0 = adjointOfG(r0.0, r1.0, r2.0, r3.0), column1 = adjointOfG(r0.1, r1.1, r2.1, r3.1)
                let column2 = adjointOfG(r0.2, r1.2, r2.2, r3.2)
                for lane in 0..<count {
                    let kernel = g + 9 * lane
                    kernel[0] += column0.0[lane]
                    kernel[1] += column1.0[lane]
                    kernel[2] += column2.0[lane]
                    kernel[3] += column0.1[lane]
                    kernel[4] += column1.1[lane]
                    kernel[5] += column2.1[lane]
                    kernel[6] += column0.2[lane]
                    kernel[7] += column1.2[lane]
                    kernel[8] += column2.2[lane]
                }
            }
        }
    }

    // MARK: Layout changes between [C][B][H][W] planes and one sample's channel-last tiles

    /// padded[y + 1][x + 1][c] = image[c][sample][y][x], zero elsewhere (the border, the half tile an odd size
    /// leaves, the lanes past Cin).
    private func transposeIn(_ image: UnsafePointer<Float>, batch: Int, into padded: UnsafeMutablePointer<Float>) {
        padded.update(repeating: 0, count: shape.paddedCount)
        toChannelLast(image, channels: shape.inChannels, channelStride: batch * shape.plane, into: padded,
                      lanes: shape.inLanes, pixelOffsets: pixelOffsets)
    }

    /// dinput[c][sample][y][x] (= or +=) padded[y + 1][x + 1][c].
    private func transposeGradientOut(_ padded: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>,
                                      batch: Int) {
        fromChannelLast(padded, lanes: shape.inLanes, pixelOffsets: pixelOffsets, into: image,
                        channels: shape.inChannels, channelStride: batch * shape.plane, accumulate: accumulate)
    }

    /// output[o][sample][y][x] = plane[y][x][o], cropping the half tile of an odd size.
    private func transposeOut(_ plane: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>, batch: Int) {
        fromChannelLast(plane, lanes: shape.outLanes, pixelOffsets: pixelOffsets + shape.plane, into: image,
                        channels: shape.outChannels, channelStride: batch * shape.plane, accumulate: false)
    }

    /// plane[y][x][o] = doutput[o][sample][y][x], zero in the half tile of an odd size.
    private func transposeGradientIn(_ image: UnsafePointer<Float>, batch: Int, into plane: UnsafeMutablePointer<Float>) {
        if shape.height % 2 == 1 || shape.width % 2 == 1 { plane.update(repeating: 0, count: shape.outputCount) }
        toChannelLast(image, channels: shape.outChannels, channelStride: batch * shape.plane, into: plane,
                      lanes: shape.outLanes, pixelOffsets: pixelOffsets + shape.plane)
    }

    /// target[pixelOffsets[p]·lanes + c] = planes[c·channelStride + p] for the H·W pixels p, in blocks of 8
    /// channels × 8 pixels transposed in registers (the scalar copy's strided stores took a fifth of the
    /// convolution; 16×16 blocks spill on AVX2). Lanes past the channels get zeros.
    private func toChannelLast(_ planes: UnsafePointer<Float>, channels: Int, channelStride: Int,
                               into target: UnsafeMutablePointer<Float>, lanes: Int, pixelOffsets: UnsafePointer<Int>) {
        forEachBlock(channels: channels) { c, channelCount, p, pixelCount in
            let rows = planes + c * channelStride + p
            // Whole blocks (nearly all) without the per-row bounds, so the rows stay in registers.
            let block = channelCount == 8 && pixelCount == 8
                ? TransposeBlock { i in loadVector(rows + i * channelStride, count: 8) }.transposed
                : TransposeBlock { i in i < channelCount ? loadVector(rows + i * channelStride, count: pixelCount) : Row() }
                    .transposed
            block.forEach(upTo: pixelCount) { j, pixel in storeVector(pixel, target + pixelOffsets[p + j] * lanes + c) }
        }
    }

    /// planes[c·channelStride + p] (= or += when `accumulate`) source[pixelOffsets[p]·lanes + c]: the inverse
    /// of `toChannelLast`.
    private func fromChannelLast(_ source: UnsafePointer<Float>, lanes: Int, pixelOffsets: UnsafePointer<Int>,
                                 into planes: UnsafeMutablePointer<Float>, channels: Int, channelStride: Int,
                                 accumulate: Bool) {
        forEachBlock(channels: channels) { c, channelCount, p, pixelCount in
            let block = TransposeBlock { j in
                j < pixelCount ? loadVector(source + pixelOffsets[p + j] * lanes + c, count: 8) : Row()
            }.transposed
            block.forEach(upTo: channelCount) { i, channel in
                let target = planes + (c + i) * channelStride + p
                storeVector(accumulate ? loadVector(target, count: pixelCount) + channel : channel, target, count: pixelCount)
            }
        }
    }

    /// body(first channel, channels, first pixel, pixels) for the blocks of up to 8 channels × 8 pixels
    /// that cover `channels` × the H·W pixels of a plane (row-major).
    @inline(__always)
    private func forEachBlock(channels: Int, _ body: (Int, Int, Int, Int) -> Void) {
        for c in stride(from: 0, to: channels, by: 8) {
            for p in stride(from: 0, to: shape.plane, by: 8) { body(c, min(8, channels - c), p, min(8, shape.plane - p)) }
        }
    }

    // MARK: The transforms, 16 channels at a time

    /// body(offset of the tile's top-left corner in a channel-last plane of `rowLength`-float rows, offset of
    /// its row in a [tile][lanes] matrix), both moved to one vector of 16 channels, for every tile of a
    /// sample and every such vector.
    @inline(__always)
    private func forEachTile(lanes: Int, rowLength: Int, _ body: (Int, Int) -> Void) {
        for ty in 0..<shape.tileRows {
            for tx in 0..<shape.tileColumns {
                for lane in stride(from: 0, to: lanes, by: 16) {
                    body(2 * ty * rowLength + 2 * tx * lanes + lane, (ty * shape.tileColumns + tx) * lanes + lane)
                }
            }
        }
    }

    /// V[ξ][t] = (Bᵀ d_t B)[ξ] for the sample's tiles t, d_t the 4×4 patch at padded[2ty][2tx],
    /// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
    private func transformInput(_ padded: UnsafePointer<Float>, into v: UnsafeMutablePointer<Float>,
                                positionStride: Int) {
        let lanes = shape.inLanes, rowLength = shape.paddedWidth * lanes
        forEachTile(lanes: lanes, rowLength: rowLength) { corner, row in
            let patch = padded + corner
            let out = v + row
            // Bᵀ·d one column j at a time: e_j = (d0 − d2, d1 + d2, d2 − d1, d1 − d3) down it.
            func column(_ j: Int) -> Quad {
                let d = patch + j * lanes
                let d0 = load(d), d1 = load(d + rowLength), d2 = load(d + 2 * rowLength), d3 = load(d + 3 * rowLength)
                return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
            }
            let e0 = column(0), e1 = column(1), e2 = column(2), e3 = column(3)
            storeBᵀ((e0.0, e1.0, e2.0, e3.0), into: out, stride: positionStride)
            storeBᵀ((e0.1, e1.1, e2.1, e3.1), into: out + 4 * positionStride, stride: positionStride)
            storeBᵀ((e0.2, e1.2, e2.2, e3.2), into: out + 8 * positionStride, stride: positionStride)
            storeBᵀ((e0.3, e1.3, e2.3, e3.3), into: out + 12 * positionStride, stride: positionStride)
        }
    }

    /// plane[2ty + i][2tx + j] = (Aᵀ M_t A)[i][j], Aᵀ = [1 1 1 0; 0 1 −1 −1].
    private func transformOutput(_ m: UnsafePointer<Float>, positionStride: Int, into plane: UnsafeMutablePointer<Float>) {
        let lanes = shape.outLanes, rowLength = 2 * shape.tileColumns * lanes
        forEachTile(lanes: lanes, rowLength: rowLength) { corner, row in
            let tile = m + row
            let top = plane + corner, bottom = top + rowLength
            // Aᵀ·M one column j at a time: its two rows (m0 + m1 + m2, m1 − m2 − m3).
            func column(_ j: Int) -> (Lane, Lane) {
                let m = tile + j * positionStride
                let m0 = load(m), m1 = load(m + 4 * positionStride), m2 = load(m + 8 * positionStride)
                let m3 = load(m + 12 * positionStride)
                return (m0 + m1 + m2, m1 - m2 - m3)
            }
            let q0 = column(0), q1 = column(1), q2 = column(2), q3 = column(3)
            storeVector(q0.0 + q1.0 + q2.0, top)
            storeVector(q1.0 - q2.0 - q3.0, top + lanes)
            storeVector(q0.1 + q1.1 + q2.1, bottom)
            storeVector(q1.1 - q2.1 - q3.1, bottom + lanes)
        }
    }

    /// dM_t = A dY_t Aᵀ, A = [1 0; 1 1; 1 −1; 0 −1]: the adjoint of `transformOutput`.
    private func transformOutputGradient(_ plane: UnsafePointer<Float>, into dm: UnsafeMutablePointer<Float>,
                                         positionStride s: Int) {
        let lanes = shape.outLanes, rowLength = 2 * shape.tileColumns * lanes
        forEachTile(lanes: lanes, rowLength: rowLength) { corner, row in
            let top = plane + corner, bottom = top + rowLength
            let out = dm + row
            let y00 = load(top), y01 = load(top + lanes)
            let y10 = load(bottom), y11 = load(bottom + lanes)
            storeA(y00, y01, into: out, stride: s)
            storeA(y00 + y10, y01 + y11, into: out + 4 * s, stride: s)
            storeA(y00 - y10, y01 - y11, into: out + 8 * s, stride: s)
            storeA(-y10, -y11, into: out + 12 * s, stride: s)
        }
    }

    /// padded = Σ_t B dV_t Bᵀ placed at [2ty][2tx] (patches overlap by two rows and columns): the adjoint
    /// of `transformInput`.
    private func transformInputGradient(_ dv: UnsafePointer<Float>, positionStride s: Int,
                                        into padded: UnsafeMutablePointer<Float>) {
        let lanes = shape.inLanes, rowLength = shape.paddedWidth * lanes
        padded.update(repeating: 0, count: shape.paddedCount)
        forEachTile(lanes: lanes, rowLength: rowLength) { corner, row in
            let patch = padded + corner
            let tile = dv + row
            // B·dV (B = (Bᵀ)ᵀ) one column j at a time: (v0, v1 − v2 + v3, −v0 + v1 + v2, −v3) down it.
            func column(_ j: Int) -> Quad {
                let v = tile + j * s
                let v0 = load(v), v1 = load(v + 4 * s), v2 = load(v + 8 * s), v3 = load(v + 12 * s)
                return (v0, v1 - v2 + v3, -v0 + v1 + v2, -v3)
            }
            let w0 = column(0), w1 = column(1), w2 = column(2), w3 = column(3)
            addB((w0.0, w1.0, w2.0, w3.0), into: patch, lanes: lanes)
            addB((w0.1, w1.1, w2.1, w3.1), into: patch + rowLength, lanes: lanes)
            addB((w0.2, w1.2, w2.2, w3.2), into: patch + 2 * rowLength, lanes: lanes)
            addB((w0.3, w1.3, w2.3, w3.3), into: patch + 3 * rowLength, lanes: lanes)
        }
    }
}

/// 16 channels of one tile position.
private typealias Lane = SIMD16<Float>

/// One row of a `TransposeBlock`.
private typealias Row = SIMD8<Float>

/// An 8×8 block of floats as 8 vectors, for transposing in registers.
private struct TransposeBlock {
    var r0, r1, r2, r3, r4, r5, r6, r7: Row

    init(r0: Row, r1: Row, r2: Row, r3: Row, r4: Row, r5: Row, r6: Row, r7: Row) {
        (self.r0, self.r1, self.r2, self.r3, self.r4, self.r5, self.r6, self.r7) = (r0, r1, r2, r3, r4, r5, r6, r7)
    }

    init(_ row: (Int) -> Row) {
        (r0, r1, r2, r3, r4, r5, r6, r7) = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
    }

    /// body(i, row i) for rows 0..<count.
    func forEach(upTo count: Int, _ body: (Int, Row) -> Void) {
        withUnsafeBytes(of: (r0, r1, r2, r3, r4, r5, r6, r7)) { rows in
            for i in 0..<count { body(i, rows.load(fromByteOffset: i * MemoryLayout<Row>.stride, as: Row.self)) }
        }
    }

    /// The block read as 64 floats (row i, column j at 8i + j), even positions first, then odd ones: the
    /// float at k moves to k's 6 index bits rotated right by one. Three of these rotate (i, j) into (j, i).
    @inline(__always)
    var unshuffled: TransposeBlock {
        func evens(_ a: Row, _ b: Row) -> Row { Row(lowHalf: a.evenHalf, highHalf: b.evenHalf) }
        func odds(_ a: Row, _ b: Row) -> Row { Row(lowHalf: a.oddHalf, highHalf: b.oddHalf) }
        return TransposeBlock(r0: evens(r0, r1), r1: evens(r2, r3), r2: evens(r4, r5), r3: evens(r6, r7),
                              r4: odds(r0, r1), r5: odds(r2, r3), r6: odds(r4, r5), r7: odds(r6, r7))
    }

    @inline(__always)
    var transposed: TransposeBlock { unshuffled.unshuffled.unshuffled }
}

/// Four lanes: one row (or column) of a 4×4 tile.
private typealias Quad = (Lane, Lane, Lane, Lane)

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> Lane { loadVector(p) }


/// out[j·stride] = (e·B)[j] = (e0 − e2, e1 + e2, e2 − e1, e1 − e3): Bᵀ along one row of a tile.
@inline(__always)
private func storeBᵀ(_ e: Quad, into out: UnsafeMutablePointer<Float>, stride: Int) {
    storeVector(e.0 - e.2, out)
    storeVector(e.1 + e.2, out + stride)
    storeVector(e.2 - e.1, out + 2 * stride)
    storeVector(e.1 - e.3, out + 3 * stride)
}

/// out[j·stride] = (A·(a, b))[j] = (a, a + b, a − b, −b).
@inline(__always)
private func storeA(_ a: Lane, _ b: Lane, into out: UnsafeMutablePointer<Float>, stride: Int) {
    storeVector(a, out)
    storeVector(a + b, out + stride)
    storeVector(a - b, out + 2 * stride)
    storeVector(-b, out + 3 * stride)
}

/// p[j·lanes] += (B·w)[j] = (w0, w1 − w2 + w3, −w0 + w1 + w2, −w3).
@inline(__always)
private func addB(_ w: Quad, into p: UnsafeMutablePointer<Float>, lanes: Int) {
    storeVector(load(p) + w.0, p)
    storeVector(load(p + lanes) + (w.1 - w.2 + w.3), p + lanes)
    storeVector(load(p + 2 * lanes) + (-w.0 + w.1 + w.2), p + 2 * lanes)
    storeVector(load(p + 3 * lanes) - w.3, p + 3 * lanes)
}

/// G·(a, b, c) = (a, ½(a + b + c), ½(a − b + c), c), G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
@inline(__always)
private func timesG(_ a: Lane, _ b: Lane, _ c: Lane) -> Quad { (a, 0.5 * (a + b + c), 0.5 * (a - b + c), c) }

/// Gᵀ·(u0, u1, u2, u3) = (u0 + ½(u1 + u2), ½(u1 − u2), ½(u1 + u2) + u3): the adjoint of `timesG`.
@inline(__always)
private func adjointOfG(_ u0: Lane, _ u1: Lane, _ u2: Lane, _ u3: Lane) -> (Lane, Lane, Lane) {
    (u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3)
}

/// out[ξ·positionStride + lane] = (G g Gᵀ)[ξ] for `count` 3×3 kernels g, tap k of each in `taps(k)`.
@inline(__always)
private func storeKernelTransform(taps tap: (Int) -> Lane, count: Int, into out: UnsafeMutablePointer<Float>,
                                  positionStride: Int) {    // G·g one kernel column j at a time, then each of its four rows r times Gᵀ.
    let column0 = timesG(tap(0), tap(3), tap(6)), column1 = timesG(tap(1), tap(4), tap(7))
    let column2 = timesG(tap(2), tap(5), tap(8))
    func storeRow(_ r: Int, _ row: Quad) {
        for j in 0..<4 {
            let value = j == 0 ? row.0 : j == 1 ? row.1 : j == 2 ? row.2 : row.3
            storeVector(value, out + (4 * r + j) * positionStride, count: count)
        }
    }
    storeRow(0, timesG(column0.0, column1.0, column2.0))
    storeRow(1, timesG(column0.1, column1.1, column2.1))
    storeRow(2, timesG(column0.2, column1.2, column2.2))
    storeRow(3, timesG(column0.3, column1.3, column2.3))
}
