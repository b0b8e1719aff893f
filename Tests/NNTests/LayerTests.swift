import CBLAS
import XCTest
@testable import NN

/// The definitions of a convolution over [C][B][H][W] data and of its two gradients, index by index in
/// Double, each element with Σ|products| beside it for its rounding bound.
private struct NaiveConvolution {
    var output, outputMagnitude, dweight, dweightMagnitude, dinput, dinputMagnitude: [Double]

    init(input: Buffer, weight: UnsafePointer<Float>, doutput: Buffer? = nil, g: ConvGeometry, outChannels: Int,
         batch: Int) {
        let outH = g.outputHeight, outW = g.outputWidth, k = g.kernel
        output = [Double](repeating: 0, count: outChannels * batch * outH * outW)
        outputMagnitude = output
        dweight = [Double](repeating: 0, count: outChannels * g.channels * k * k)
        dweightMagnitude = dweight
        dinput = [Double](repeating: 0, count: input.count)
        dinputMagnitude = dinput
        for co in 0..<outChannels { for b in 0..<batch { for oy in 0..<outH { for ox in 0..<outW {
            let o = ((co * batch + b) * outH + oy) * outW + ox
            let dy = Double(doutput?[o] ?? 0)
            for ci in 0..<g.channels { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                guard (0..<g.height).contains(iy), (0..<g.width).contains(ix) else { continue }
                let wi = ((co * g.channels + ci) * k + ky) * k + kx, xi = ((ci * batch + b) * g.height + iy) * g.width + ix
                let w = Double(weight[wi]), x = Double(input[xi])
                output[o] += w * x
                outputMagnitude[o] += abs(w * x)
                dweight[wi] += dy * x
                dweightMagnitude[wi] += abs(dy * x)
                dinput[xi] += dy * w
                dinputMagnitude[xi] += abs(dy * w)
            } } }
        } } } }
    }
}

/// Winograd F(2×2, 3×3)'s rounding grows with its transforms: an output is Aᵀ(U ⊙ V)A with U = G g Gᵀ and
/// V = Bᵀ d B, so the values it rounds are up to (‖Aᵀ‖∞·‖G‖∞·‖Bᵀ‖∞)² = (3·1.5·2)² = 81 times the
/// products of the direct sum (the forward and the adjoint computations of both gradients alike), and it
/// rounds fewer of them (a channel sum and the transforms' additions, fewer than the direct Cin·9 for
/// any Cin ≥ 2).
private let winogradGrowth = 81.0

private extension Conv2d {
    var runsWinograd: Bool { executedFlopsPerSample < forwardFlopsPerSample }
}

/// A convolution with random weights in a network context of its own.
private func randomConvolution(_ shape: (Int, Int, Int, Int, Int, Int, Int), maxBatch: Int,
                               _ rng: inout Xoshiro256) throws -> (NetworkContext, Conv2d) {
    let (cin, cout, k, s, p, h, w) = shape
    let context = makeContext()
    let conv = try Conv2d(context, name: "c", inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: p,
                          inputHeight: h, inputWidth: w, maxBatch: maxBatch)
    context.allocate()
    randomize(context.parameters, context.parameterCount, &rng)
    return (context, conv)
}

final class ConvolutionTests: XCTestCase {
    /// (inChannels, outChannels, kernel, stride, padding, height, width): strides, padding, odd sizes,
    /// the 1×1 GEMM-only path, 1×1 stride 2 (ResNet projections), the 7×7/2 stem and stride-2 3×3 (the
    /// polyphase im2col), 3×3 stride-1 "same" convolutions (Winograd) and other "same" ones (5×5, im2col)
    /// down to maps smaller than the kernel; thin (≤ 32 output channels, run sample by sample) and wide
    /// (whole batch).
    private let cases: [(Int, Int, Int, Int, Int, Int, Int)] = [
        (3, 4, 3, 1, 1, 7, 5), (2, 3, 3, 2, 1, 9, 6), (2, 5, 1, 1, 0, 5, 3), (3, 2, 1, 2, 0, 7, 4),
        (1, 3, 7, 2, 3, 11, 9), (2, 2, 3, 3, 0, 8, 7), (1, 2, 5, 2, 2, 3, 2), (2, 3, 2, 1, 1, 4, 5),
        (2, 2, 3, 1, 1, 1, 1), (2, 3, 5, 1, 2, 2, 1), (1, 2, 3, 1, 1, 2, 3), (2, 2, 5, 1, 2, 4, 6),
        (2, 33, 3, 1, 1, 4, 3), (2, 34, 3, 2, 1, 5, 4), (2, 33, 1, 1, 0, 3, 2), (1, 33, 3, 1, 1, 2, 1),
        (2, 33, 5, 1, 2, 1, 2),
    ]

    func testForwardMatchesNaiveLoops() throws {
        var rng = Xoshiro256(seed: 1)
        // A batch below the model's maximum, and a model for one sample (predict, export).
        for (cin, cout, k, s, p, h, w) in cases {
            for (batch, maxBatch) in [(3, 4), (1, 1)] {
                let (context, conv) = try randomConvolution((cin, cout, k, s, p, h, w), maxBatch: maxBatch, &rng)
                let input = Buffer(random: cin * batch * h * w, rng: &rng)
                let output = Buffer(cout * batch * conv.outputHeight * conv.outputWidth, value: .nan)
                conv.forward(input: input.pointer, output: output.pointer, batch: batch)
                let exact = NaiveConvolution(input: input, weight: context.parameters, g: conv.geometry,
                                             outChannels: cout, batch: batch)
                assertWithinRounding(output.array, exact.output, magnitudes: exact.outputMagnitude, length: cin * k * k,
                                     growth: conv.runsWinograd ? winogradGrowth : 1, "conv \((cin, cout, k, s, p, h, w)) output")
            }
        }
    }

    func testBackwardMatchesFiniteDifferences() throws {
        var rng = Xoshiro256(seed: 2)
        for (cin, cout, k, s, p, h, w) in cases {
            let batch = 2
            let (context, conv) = try randomConvolution((cin, cout, k, s, p, h, w), maxBatch: batch, &rng)
            let outCount = cout * batch * conv.outputHeight * conv.outputWidth
            let input = Buffer(random: cin * batch * h * w, rng: &rng)
            let output = Buffer(outCount), upstream = Buffer(random: outCount, rng: &rng)
            let loss: () -> Double = {
                conv.forward(input: input.pointer, output: output.pointer, batch: batch)
                return projection(output.pointer, upstream.pointer, outCount)
            }
            _ = loss()  // backward uses the columns of the last forward
            // Gradients accumulate into dweight: start from a known non-zero value to check "+=".
            context.gradients.update(repeating: 0.5, count: context.parameterCount)
            let dinput = Buffer(input.count, value: 0.25)
            conv.backward(input: input.pointer, doutput: upstream.pointer, dinput: dinput.pointer, accumulate: true,
                          batch: batch)
            let dweight = (0..<context.parameterCount).map { context.gradients[$0] - 0.5 }
            let label = "conv \((cin, cout, k, s, p, h, w))"
            assertGradientsClose(dweight, numericGradient(context.parameters, count: context.parameterCount,
                                                          step: 1e-2, loss: loss), tolerance: 1e-3, label + " dweight")
            assertGradientsClose(dinput.array.map { $0 - 0.25 },
                                 numericGradient(input.pointer, count: input.count, step: 1e-2, loss: loss),
                                 tolerance: 1e-3, label + " dinput (accumulated)")
            // Without accumulate the input gradient is overwritten.
            let overwritten = Buffer(input.count, value: 99)
            conv.backward(input: input.pointer, doutput: upstream.pointer, dinput: overwritten.pointer,
                          accumulate: false, batch: batch)
            for i in 0..<input.count { XCTAssertEqual(overwritten[i], dinput[i] - 0.25, accuracy: 1e-5, label) }
        }
    }

    /// Thin convolutions whose per-sample product exceeds OpenBLAS's small-matrix size are cut into runs of
    /// output positions (the stem); one even and one uneven cut, checked against the definitions (finite
    /// differences at this size would take minutes).
    func testThinConvolutionsCutIntoRunsMatchNaiveLoops() throws {
        var rng = Xoshiro256(seed: 3)
        for shape in [(8, 32, 3, 2, 1, 45, 49), (1, 16, 7, 2, 3, 128, 44)] {
            let (cin, cout, k, _, _, h, w) = shape
            let g = ConvGeometry(channels: cin, height: h, width: w, kernel: k, stride: shape.3, padding: shape.4)
            XCTAssertGreaterThan(cout * g.outputHeight * g.outputWidth * cin * k * k, 1_000_000,
                                 "the case must be cut into runs")
            let conv = try randomConvolution(shape, maxBatch: 2, &rng).1
            XCTAssertEqual(conv.executedFlopsPerSample, conv.forwardFlopsPerSample, "\(shape) must not run Winograd")
            try assertConvolutionMatchesDefinitions(shape, batch: 2, threads: 1, &rng)
        }
    }

    /// Winograd F(2×2, 3×3) for the 3×3 stride-1 convolutions: groups of several samples with a partial last
    /// group, channel counts that do not fill whole 16-float vectors, odd map sizes, one tile per sample; on
    /// one and on two threads, which must give the same bits.
    func testWinogradConvolutionsMatchNaiveLoopsOnAnyThreadCount() throws {
        var rng = Xoshiro256(seed: 4)
        for (shape, batch) in [((40, 20, 3, 1, 1, 5, 3), 11), ((16, 32, 3, 1, 1, 12, 11), 3),
                               ((3, 17, 3, 1, 1, 2, 2), 5), ((32, 16, 3, 1, 1, 32, 11), 2), ((32, 32, 3, 1, 1, 4, 2), 8)] {
            let conv = try randomConvolution(shape, maxBatch: batch, &rng).1
            XCTAssertLessThan(conv.executedFlopsPerSample, conv.forwardFlopsPerSample, "\(shape) must run Winograd")
            let one = try assertConvolutionMatchesDefinitions(shape, batch: batch, threads: 1, &rng, seed: 5)
            let two = try assertConvolutionMatchesDefinitions(shape, batch: batch, threads: 2, &rng, seed: 5)
            for (a, b) in zip(one, two) {
                XCTAssert(a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }, "\(shape) batch \(batch): 1 vs 2 threads")
            }
        }
    }

    /// Forward, weight gradient and input gradient of one random convolution on `threads` compute threads
    /// against the definitions: every (output, tap) pair that reads the image adds into both gradients.
    /// Returns the three results. `seed` fixes the convolution and its data (else they come from `rng`).
    @discardableResult
    private func assertConvolutionMatchesDefinitions(_ shape: (Int, Int, Int, Int, Int, Int, Int), batch: Int,
                                                     threads: Int32, _ rng: inout Xoshiro256,
                                                     seed: UInt64? = nil) throws -> [[Float]] {
        let (cin, cout, k, _, _, h, w) = shape
        var rng = seed.map { Xoshiro256(seed: $0) } ?? rng
        let (context, conv) = try randomConvolution(shape, maxBatch: batch, &rng)
        let g = conv.geometry, outH = g.outputHeight, outW = g.outputWidth
        let input = Buffer(random: cin * batch * h * w, rng: &rng)
        let output = Buffer(cout * batch * outH * outW), upstream = Buffer(random: output.count, rng: &rng)
        let dinput = Buffer(input.count, value: .nan)
        context.gradients.update(repeating: 0, count: context.parameterCount)
        let saved = openblas_get_num_threads()
        defer { openblas_set_num_threads(saved) }
        openblas_set_num_threads(threads)
        withComputeThreads {
            conv.forward(input: input.pointer, output: output.pointer, batch: batch)
            conv.backward(input: input.pointer, doutput: upstream.pointer, dinput: dinput.pointer, accumulate: false,
                          batch: batch)
        }
        let label = "conv \(shape) batch \(batch) threads \(threads)"
        let exact = NaiveConvolution(input: input, weight: context.parameters, doutput: upstream, g: g, outChannels: cout,
                                     batch: batch)
        let growth = conv.runsWinograd ? winogradGrowth : 1
        assertWithinRounding(output.array, exact.output, magnitudes: exact.outputMagnitude, length: cin * k * k,
                             growth: growth, "\(label) output")
        assertWithinRounding(Array(UnsafeBufferPointer(start: context.gradients, count: context.parameterCount)),
                             exact.dweight, magnitudes: exact.dweightMagnitude, length: batch * outH * outW,
                             growth: growth, "\(label) dweight")
        assertWithinRounding(dinput.array, exact.dinput, magnitudes: exact.dinputMagnitude, length: cout * k * k,
                             growth: growth, "\(label) dinput")
        return [output.array, Array(UnsafeBufferPointer(start: context.gradients, count: context.parameterCount)),
                dinput.array]
    }

    func testInputSmallerThanKernelThrows() {
        XCTAssertThrowsError(try Conv2d(makeContext(), name: "conv1", inChannels: 1, outChannels: 2, kernel: 7,
                                        stride: 2, padding: 0, inputHeight: 4, inputWidth: 9, maxBatch: 1)) { error in
            XCTAssertEqual("\(error)", "invalid input size of conv1 4x9: smaller than its 7x7 kernel")
        }
    }
}

final class BatchNormTests: XCTestCase {
    private let channels = 3, batch = 2, height = 3, width = 5

    private func makeNorm(rectifies: Bool = false, subBands: Int = 1) -> (NetworkContext, BatchNorm2d) {
        let context = makeContext()
        let norm = BatchNorm2d(context, name: "bn", channels: channels, height: height, width: width, rectifies: rectifies,
                               subBands: subBands)
        context.allocate()
        norm.initialize()
        var rng = Xoshiro256(seed: 3)
        randomize(context.parameters, context.parameterCount, &rng)
        return (context, norm)
    }

    func testTrainingNormalisesWithBatchStatisticsAndUpdatesRunningAverages() {
        let (context, norm) = makeNorm()
        var rng = Xoshiro256(seed: 4)
        let n = batch * height * width
        let input = Buffer(random: channels * n, rng: &rng, scale: 3)
        for i in 0..<input.count { input[i] += 2 }
        let output = Buffer(input.count)
        norm.forward(input: input.pointer, output: output.pointer, batch: batch, training: true)
        for c in 0..<channels {
            let x = (0..<n).map { Double(input[c * n + $0]) }
            let mean = x.reduce(0, +) / Double(n)
            let biased = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            let gamma = Double(context.parameters[c]), beta = Double(context.parameters[channels + c])
            for i in 0..<n {
                let expected = (x[i] - mean) / (biased + 1e-5).squareRoot() * gamma + beta
                XCTAssertEqual(Double(output[c * n + i]), expected, accuracy: 1e-5)
            }
            // PyTorch: running = 0.9·running + 0.1·batch statistic, with the unbiased variance.
            XCTAssertEqual(Double(context.buffers[c]), 0.1 * mean, accuracy: 1e-6)
            XCTAssertEqual(Double(context.buffers[channels + c]), 0.9 + 0.1 * biased * Double(n) / Double(n - 1),
                           accuracy: 1e-5)
        }
    }

    func testBlockedStatisticsOverLongChannelsMatchDouble() {
        // 3·37·29 = 3219 values per channel: several 1024-value blocks, 16-lane body and a scalar tail.
        let context = makeContext()
        let norm = BatchNorm2d(context, name: "bn", channels: 2, height: 37, width: 29)
        context.allocate()
        norm.initialize()
        var rng = Xoshiro256(seed: 12)
        let n = 3 * 37 * 29
        let input = Buffer(random: 2 * n, rng: &rng, scale: 4)
        for i in 0..<input.count { input[i] += 10 }  // a large mean, where E[x²] − E[x]² loses digits first
        let output = Buffer(input.count)
        norm.forward(input: input.pointer, output: output.pointer, batch: 3, training: true)
        for c in 0..<2 {
            let x = (0..<n).map { Double(input[c * n + $0]) }
            let mean = x.reduce(0, +) / Double(n)
            let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            for i in stride(from: 0, to: n, by: 7) {
                XCTAssertEqual(Double(output[c * n + i]), (x[i] - mean) / (variance + 1e-5).squareRoot(), accuracy: 2e-5)
            }
        }
    }

    func testEvaluationUsesRunningStatisticsAndLeavesThemAlone() {
        let (context, norm) = makeNorm()
        for c in 0..<channels {
            context.buffers[c] = Float(c) - 1  // running mean
            context.buffers[channels + c] = Float(c + 1) * 0.5  // running variance
        }
        var rng = Xoshiro256(seed: 5)
        let input = Buffer(random: channels * batch * height * width, rng: &rng)
        let output = Buffer(input.count)
        norm.forward(input: input.pointer, output: output.pointer, batch: batch, training: false)
        let n = batch * height * width
        for c in 0..<channels {
            let gamma = context.parameters[c], beta = context.parameters[channels + c]
            for i in 0..<n {
                let expected = (input[c * n + i] - (Float(c) - 1)) / (Float(c + 1) * 0.5 + 1e-5).squareRoot() * gamma + beta
                XCTAssertEqual(output[c * n + i], expected, accuracy: 1e-5)
            }
            XCTAssertEqual(context.buffers[c], Float(c) - 1)
            XCTAssertEqual(context.buffers[channels + c], Float(c + 1) * 0.5)
        }
        // In eval mode a sample's output does not depend on the rest of the batch: the first plane (channel
        // 0, sample 0) is the same data in a batch of one and comes out the same.
        let single = Buffer(channels * height * width)
        norm.forward(input: input.pointer, output: single.pointer, batch: 1, training: false)
        for i in 0..<(height * width) { XCTAssertEqual(single[i], output[i]) }
        norm.forward(input: input.pointer, output: single.pointer, batch: 1, training: true)
        XCTAssertNotEqual(single[0], output[0], "training mode normalises with the batch's own statistics")
    }

    /// SubSpectral Normalization against a naive loop: channel c's rows cut into bands [0, 1) and [1, 3)
    /// (⌊s·3/2⌋), each (channel, band) normalised by its own batch statistics and its own γ, β, and its own
    /// running averages moved; more bands than rows are capped at one band per row.
    func testSubBandsNormaliseEachBandOfRowsApart() {
        let subBands = 2, bandRows = [0..<1, 1..<3]
        let (context, norm) = makeNorm(subBands: subBands)
        XCTAssertEqual(context.parameterCount, 2 * channels * subBands)
        var rng = Xoshiro256(seed: 14)
        let plane = height * width
        let input = Buffer(random: channels * batch * plane, rng: &rng, scale: 3)
        for i in 0..<input.count { input[i] += Float(i % plane / width) * 4 }  // each row its own level
        let output = Buffer(input.count)
        norm.forward(input: input.pointer, output: output.pointer, batch: batch, training: true)
        for c in 0..<channels {
            for (s, rows) in bandRows.enumerated() {
                let g = c * subBands + s
                let indices = (0..<batch).flatMap { b in rows.flatMap { r in (0..<width).map { (c * batch + b) * plane + r * width + $0 } } }
                let x = indices.map { Double(input[$0]) }, n = Double(x.count)
                let mean = x.reduce(0, +) / n
                let biased = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
                let gamma = Double(context.parameters[g]), beta = Double(context.parameters[channels * subBands + g])
                for (i, index) in indices.enumerated() {
                    XCTAssertEqual(Double(output[index]), (x[i] - mean) / (biased + 1e-5).squareRoot() * gamma + beta,
                                   accuracy: 1e-5, "channel \(c) band \(s)")
                }
                XCTAssertEqual(Double(context.buffers[g]), 0.1 * mean, accuracy: 1e-6)
                XCTAssertEqual(Double(context.buffers[channels * subBands + g]), 0.9 + 0.1 * biased * n / (n - 1),
                               accuracy: 1e-5)
            }
        }
        XCTAssertEqual(makeNorm(subBands: 7).0.parameterCount, 2 * channels * height, "one band per row at most")
    }

    func testBackwardMatchesFiniteDifferencesInBothModesWithAndWithoutFusedReLU() {
        for (training, rectifies, subBands) in [(true, false, 1), (false, false, 1), (true, true, 1), (false, true, 1),
                                                (true, false, 2), (true, true, 3), (false, true, 2)] {
            let (context, norm) = makeNorm(rectifies: rectifies, subBands: subBands)
            var rng = Xoshiro256(seed: 6)
            let input = Buffer(random: channels * batch * height * width, rng: &rng, scale: 2)
            let output = Buffer(input.count), upstream = Buffer(random: input.count, rng: &rng)
            let loss: () -> Double = {
                norm.forward(input: input.pointer, output: output.pointer, batch: self.batch, training: training)
                return projection(output.pointer, upstream.pointer, input.count)
            }
            _ = loss()
            if rectifies { XCTAssert(output.array.contains(0) && output.array.allSatisfy { $0 >= 0 }, "some outputs clipped") }
            let dinput = Buffer(input.count), doutput = Buffer(input.count)
            doutput.pointer.update(from: upstream.pointer, count: input.count)
            norm.backward(input: input.pointer, output: output.pointer, doutput: doutput.pointer, dinput: dinput.pointer,
                          batch: batch)
            let label = (training ? "training" : "eval") + (rectifies ? " + relu" : "") + " in \(subBands) bands"
            // A smaller step with the ReLU, so that no output crosses its kink.
            let step: Float = rectifies ? 1e-3 : 1e-2
            assertGradientsClose(dinput.array, numericGradient(input.pointer, count: input.count, step: step, loss: loss),
                                 tolerance: 2e-3, "bn dinput " + label)
            assertGradientsClose(Array(UnsafeBufferPointer(start: context.gradients, count: context.parameterCount)),
                                 numericGradient(context.parameters, count: context.parameterCount, step: step, loss: loss),
                                 tolerance: 2e-3, "bn dweight/dbias " + label)
        }
    }

    /// AdaBN's re-estimation: the running statistics become the plain average of the batches' means and
    /// unbiased variances, whatever they were; afterwards a training forward moves them by momentum 0.1 again.
    func testCumulativeStatisticsAverageTheBatchesAndThenMomentumResumes() {
        let context = NetworkContext()
        let channels = 2, height = 3, width = 2, batch = 2, n = batch * height * width
        let norm = BatchNorm2d(context, name: "bn", channels: channels, height: height, width: width)
        context.allocate()
        norm.initialize()
        var rng = Xoshiro256(seed: 31)
        let output = Buffer(channels * n)
        var means = [[Double]](repeating: [], count: channels), variances = means
        norm.startCumulativeStatistics()
        for shift in [0.0, 5.0, -3.0] {
            let input = Buffer(random: channels * n, rng: &rng, scale: 2)
            for i in 0..<input.count { input[i] += Float(shift) }
            norm.forward(input: input.pointer, output: output.pointer, batch: batch, training: true)
            for c in 0..<channels {
                let x = (0..<n).map { Double(input[c * n + $0]) }, mean = x.reduce(0, +) / Double(n)
                means[c].append(mean)
                variances[c].append(x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1))
            }
        }
        norm.stopCumulativeStatistics()
        let runningMean = context.buffers + norm.runningMean.offset, runningVar = context.buffers + norm.runningVar.offset
        for c in 0..<channels {
            XCTAssertEqual(Double(runningMean[c]), means[c].reduce(0, +) / 3, accuracy: 1e-5)
            XCTAssertEqual(Double(runningVar[c]), variances[c].reduce(0, +) / 3, accuracy: 1e-4)
        }
        let before = (Double(runningMean[0]), Double(runningVar[0]))
        let input = Buffer(random: channels * n, rng: &rng)
        norm.forward(input: input.pointer, output: output.pointer, batch: batch, training: true)
        let x = (0..<n).map { Double(input[$0]) }, mean = x.reduce(0, +) / Double(n)
        XCTAssertEqual(Double(runningMean[0]), 0.9 * before.0 + 0.1 * mean, accuracy: 1e-5)
    }

    func testReductionHookSeesLocalSumsAndCanMakeStatisticsGlobal() {
        // Two "ranks" holding the two halves of a batch, reduced by a hook, must normalise exactly like one
        // process holding the whole batch.
        var rng = Xoshiro256(seed: 7)
        let plane = height * width
        let whole = Buffer(random: channels * batch * plane, rng: &rng)
        let (referenceContext, reference) = makeNorm()
        let referenceOutput = Buffer(whole.count)
        reference.forward(input: whole.pointer, output: referenceOutput.pointer, batch: batch, training: true)

        let halves = (0..<batch).map { b -> Buffer in
            let half = Buffer(channels * plane)
            for c in 0..<channels { (half.pointer + c * plane).update(from: whole.pointer + (c * batch + b) * plane, count: plane) }
            return half
        }
        let norms = (0..<batch).map { _ in makeNorm() }
        // Forward: each rank's local vector is collected, then the hook writes back the sum of both.
        var forwardVectors: [[Double]] = []
        for (context, _) in norms {
            context.batchNormReduce = { vector, count in forwardVectors.append(Array(UnsafeBufferPointer(start: vector, count: count))) }
        }
        let outputs = halves.map { Buffer($0.count) }
        for (rank, (_, norm)) in norms.enumerated() {
            norm.forward(input: halves[rank].pointer, output: outputs[rank].pointer, batch: 1, training: true)
        }
        XCTAssertEqual(forwardVectors.count, 2)
        XCTAssertEqual(forwardVectors[0].last, Double(plane), "local element count")
        let total = zip(forwardVectors[0], forwardVectors[1]).map { $0 + $1 }
        for (rank, (context, norm)) in norms.enumerated() {
            context.batchNormReduce = { vector, count in for i in 0..<count { vector[i] = total[i] } }
            norm.forward(input: halves[rank].pointer, output: outputs[rank].pointer, batch: 1, training: true)
            for c in 0..<channels {
                for i in 0..<plane {
                    XCTAssertEqual(outputs[rank][c * plane + i], referenceOutput[(c * batch + rank) * plane + i], accuracy: 1e-5)
                }
            }
        }
        _ = referenceContext
    }
}

final class PoolingAndPointwiseTests: XCTestCase {
    func testMaxPoolForwardMatchesNaiveLoopsAndBackwardRoutesToTheMax() throws {
        var rng = Xoshiro256(seed: 8)
        for (h, w) in [(7, 5), (8, 8), (3, 2), (1, 1), (6, 11)] {
            let channels = 2, batch = 2
            let pool = try MaxPool2d(channels: channels, height: h, width: w, kernel: 3, stride: 2, padding: 1, maxBatch: batch)
            let outH = pool.outputHeight, outW = pool.outputWidth
            XCTAssertEqual(outH, (h - 1) / 2 + 1, "torch: floor((H + 2 − 3) / 2) + 1")
            // Distinct values at least 0.01 apart, so the finite-difference step never changes a window's winner;
            // all negative, so a zero for the padding would win.
            let input = Buffer(channels * batch * h * w)
            for i in 0..<input.count { input[i] = -0.01 * Float(i + 1) }
            for i in stride(from: input.count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                (input[i], input[j]) = (input[j], input[i])
            }
            let output = Buffer(channels * batch * outH * outW)
            pool.forward(input: input.pointer, output: output.pointer, batch: batch)
            for plane in 0..<(channels * batch) {
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        var best = -Float.infinity
                        for iy in (2 * oy - 1)...(2 * oy + 1) where (0..<h).contains(iy) {
                            for ix in (2 * ox - 1)...(2 * ox + 1) where (0..<w).contains(ix) {
                                best = max(best, input[plane * h * w + iy * w + ix])
                            }
                        }
                        XCTAssertEqual(output[plane * outH * outW + oy * outW + ox], best)
                    }
                }
            }
            let upstream = Buffer(random: output.count, rng: &rng)
            let dinput = Buffer(input.count, value: .nan)
            pool.backward(doutput: upstream.pointer, dinput: dinput.pointer, batch: batch)
            let numeric = numericGradient(input.pointer, count: input.count, step: 1e-3) {
                pool.forward(input: input.pointer, output: output.pointer, batch: batch)
                return projection(output.pointer, upstream.pointer, output.count)
            }
            assertGradientsClose(dinput.array, numeric, tolerance: 1e-3, "maxpool \(h)x\(w)")
        }
    }

    func testGlobalAveragePoolAgainstFiniteDifferences() {
        var rng = Xoshiro256(seed: 9)
        let planes = 6, spatial = 7
        let input = Buffer(random: planes * spatial, rng: &rng), output = Buffer(planes)
        let upstream = Buffer(random: planes, rng: &rng)
        GlobalAveragePool.forward(input: input.pointer, output: output.pointer, planes: planes, spatial: spatial)
        for p in 0..<planes {
            XCTAssertEqual(output[p], (0..<spatial).map { input[p * spatial + $0] }.reduce(0, +) / 7, accuracy: 1e-6)
        }
        let dinput = Buffer(input.count)
        GlobalAveragePool.backward(doutput: upstream.pointer, dinput: dinput.pointer, planes: planes, spatial: spatial)
        let numeric = numericGradient(input.pointer, count: input.count, step: 1e-2) {
            GlobalAveragePool.forward(input: input.pointer, output: output.pointer, planes: planes, spatial: spatial)
            return projection(output.pointer, upstream.pointer, planes)
        }
        assertGradientsClose(dinput.array, numeric, tolerance: 1e-3, "avgpool")
    }

    func testReLUForwardAndBackward() {
        var rng = Xoshiro256(seed: 10)
        let x = Buffer(random: 50, rng: &rng), original = x.array
        let upstream = Buffer(random: 50, rng: &rng)
        for i in 0..<50 { x[i] = ReLU.apply(x[i]) }
        let grad = Buffer(50)
        grad.pointer.update(from: upstream.pointer, count: 50)
        ReLU.backward(output: x.pointer, grad: grad.pointer, count: 50)
        for i in 0..<50 {
            XCTAssertEqual(x[i], max(original[i], 0))
            XCTAssertEqual(grad[i], original[i] > 0 ? upstream[i] : 0)
        }
        XCTAssert(original.contains { $0 < 0 } && original.contains { $0 > 0 })
    }

    func testDropoutScalesKeptValuesMasksGradientsAndIsSeeded() {
        let count = 10_000
        let first = Dropout(probability: 0.3, capacity: count, seed: 42)
        let x = Buffer(count, value: 1)
        first.forward(x.pointer, count: count, training: true)
        let kept = x.array.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / Double(count), 0.7, accuracy: 0.02)
        XCTAssert(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
        let grad = Buffer(count, value: 2)
        first.backward(grad.pointer, count: count)
        for i in 0..<count { XCTAssertEqual(grad[i], x[i] * 2, accuracy: 1e-6) }

        let second = Dropout(probability: 0.3, capacity: count, seed: 42), y = Buffer(count, value: 1)
        second.forward(y.pointer, count: count, training: true)
        XCTAssertEqual(x.array, y.array, "same seed, same mask")
        second.forward(y.pointer, count: count, training: true)
        XCTAssertNotEqual(x.array, y.array.map { $0 == 0 ? 0 : 1 / 0.7 }, "the mask changes between steps")

        let evaluation = Buffer(count, value: 3)
        second.forward(evaluation.pointer, count: count, training: false)
        XCTAssert(evaluation.array.allSatisfy { $0 == 3 })
    }

    func testLinearAgainstNaiveLoopsAndFiniteDifferences() {
        var rng = Xoshiro256(seed: 11)
        let inFeatures = 5, outFeatures = 3, batch = 4
        let context = makeContext()
        let fc = Linear(context, name: "fc", inFeatures: inFeatures, outFeatures: outFeatures)
        context.allocate()
        fc.initialize(&rng)
        let bound = 1 / Float(inFeatures).squareRoot()
        XCTAssert((0..<context.parameterCount).allSatisfy { abs(context.parameters[$0]) <= bound })
        let input = Buffer(random: inFeatures * batch, rng: &rng)  // [in][B]
        let output = Buffer(batch * outFeatures)  // [B][out]
        fc.forward(input: input.pointer, output: output.pointer, batch: batch)
        for b in 0..<batch {
            for o in 0..<outFeatures {
                var expected = context.parameters[fc.bias.offset + o]
                for i in 0..<inFeatures { expected += context.parameters[o * inFeatures + i] * input[i * batch + b] }
                XCTAssertEqual(output[b * outFeatures + o], expected, accuracy: 1e-5)
            }
        }
        let upstream = Buffer(random: output.count, rng: &rng), dinput = Buffer(input.count)
        var readyRanges: [Range<Int>] = []
        context.gradientsReady = { readyRanges.append($0) }
        fc.backward(input: input.pointer, doutput: upstream.pointer, dinput: dinput.pointer, batch: batch)
        XCTAssertEqual(readyRanges, [0..<context.parameterCount])
        let loss: () -> Double = {
            fc.forward(input: input.pointer, output: output.pointer, batch: batch)
            return projection(output.pointer, upstream.pointer, output.count)
        }
        assertGradientsClose(dinput.array, numericGradient(input.pointer, count: input.count, step: 1e-2, loss: loss),
                             tolerance: 1e-3, "fc dinput")
        assertGradientsClose(Array(UnsafeBufferPointer(start: context.gradients, count: context.parameterCount)),
                             numericGradient(context.parameters, count: context.parameterCount, step: 1e-2, loss: loss),
                             tolerance: 1e-3, "fc dweight/dbias")
    }
}

final class GemmTests: XCTestCase {
    /// The engine's tiled GEMM (by columns, or by rows when C is narrow) gives the same bits on 1, 2 and 3
    /// compute threads, and every element agrees with a naive loop in Double within the classic error bound
    /// of a float dot product, for every transpose combination.
    func testTiledGemmIsBitwiseTheSameForAnyThreadCountAndMatchesNaiveLoops() {
        let threads = openblas_get_num_threads()
        defer { openblas_set_num_threads(threads) }
        var rng = Xoshiro256(seed: 13)
        for (m, n, k) in [(16, 49, 300), (37, 300, 23), (5, 130, 7), (64, 1000, 9), (3, 70, 2000)] {
            for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = Buffer(random: m * k, rng: &rng), b = Buffer(random: k * n, rng: &rng)
                let (lda, ldb) = (transposeA ? m : k, transposeB ? k : n)
                let initial = Buffer(random: m * n, rng: &rng)
                let label = "\((m, n, k)) transposes \((transposeA, transposeB))"
                var results: [[Float]] = []
                for computeThreads: Int32 in [1, 2, 3] {
                    let c = Buffer(m * n)
                    c.pointer.update(from: initial.pointer, count: m * n)
                    openblas_set_num_threads(computeThreads)
                    withComputeThreads {
                        gemm(.fp32, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a.pointer,
                             lda: lda, b.pointer, ldb: ldb, beta: 1, c.pointer, ldc: n)
                    }
                    results.append(c.array)
                }
                XCTAssert(results[0].elementsEqual(results[1]) { $0.bitPattern == $1.bitPattern }, "1 vs 2 threads, \(label)")
                XCTAssert(results[0].elementsEqual(results[2]) { $0.bitPattern == $1.bitPattern }, "1 vs 3 threads, \(label)")
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0, magnitude = 0.0
                        for l in 0..<k {
                            let product = Double(transposeA ? a[l * m + i] : a[i * k + l])
                                * Double(transposeB ? b[j * k + l] : b[l * n + j])
                            sum += product
                            magnitude += abs(product)
                        }
                        // Float accumulation of k products plus the scaled C: |error| ≤ (k + 2)·ε·Σ|terms|
                        // (Higham, Accuracy and Stability, §3.1), whatever order the kernel adds them in.
                        let bound = Double(k + 2) * Double(Float.ulpOfOne) * (0.5 * magnitude + abs(Double(initial[i * n + j])))
                        let error = abs(Double(results[0][i * n + j]) - (Double(initial[i * n + j]) + 0.5 * sum))
                        worst = max(worst, error / bound)
                    }
                }
                XCTAssertLessThanOrEqual(worst, 1, "worst error / bound, \(label)")
            }
        }
    }

    /// The grid covers 0..<count exactly once, in whole tiles of the minimum size but the last, with at most
    /// `maximumTiles` tiles: a function of the count alone.
    func testGemmGridCoversTheRangeInWholeTiles() {
        for (count, minimumTile) in [(1, 64), (63, 64), (64, 64), (65, 64), (1000, 64), (100_000, 64), (17, 8), (4096, 8)] {
            let grid = GemmGrid(count, minimumTile: minimumTile)
            let ranges = (0..<grid.tiles).map(grid.range)
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, count)
            XCTAssertLessThanOrEqual(grid.tiles, GemmGrid.maximumTiles)
            for (left, right) in zip(ranges, ranges.dropFirst()) {
                XCTAssertEqual(left.upperBound, right.lowerBound, "\(count)")
                XCTAssertEqual(left.count % minimumTile, 0, "\(count): tiles start on whole blocks")
            }
        }
    }
}
