import CBF16
import CBLAS
import XCTest
@testable import NN

/// Mixed precision's kernel and network, against Float32. The kernel tests run where the CPU has
/// AVX512_BF16 and are skipped, saying so, elsewhere; the rounding and the choice of precision run everywhere.
final class BF16Tests: XCTestCase {
    func requireBF16() throws {
        try XCTSkipUnless(Precision.bf16Available, "this CPU has no AVX512_BF16: Float32 is the only precision here")
    }

    /// bfloat16 keeps Float32's exponent and the top 7 of its 23 fraction bits.
    func testRoundingIsToNearestTiesToEvenAndFlushesDenormalsLikeTheHardware() {
        XCTAssertEqual(bf16_round(1 + 0x1p-8), 1, "half an ulp above an even value rounds down to it")
        XCTAssertEqual(bf16_round(1 + 3 * 0x1p-8), 1 + 0x1p-6, "half an ulp above an odd value rounds up to even")
        XCTAssertEqual(bf16_round(1 + 0x1p-8 + 0x1p-20), 1 + 0x1p-7, "above half an ulp rounds up")
        XCTAssertEqual(bf16_round(-3.14159), -3.140625)
        XCTAssertEqual(bf16_round(Float.greatestFiniteMagnitude), .infinity, "past the largest bf16 rounds to infinity")
        XCTAssertEqual(bf16_round(-.infinity), -.infinity)
        XCTAssertTrue(bf16_round(.nan).isNaN)
        XCTAssertEqual(bf16_round(0x1p-130).bitPattern, 0, "a denormal becomes +0 (VCVTNE2PS2BF16 does so)")
        XCTAssertEqual(bf16_round(-0x1p-130).bitPattern, (-Float.zero).bitPattern)
        XCTAssertEqual(bf16_round(Float.leastNormalMagnitude), Float.leastNormalMagnitude)
    }

    /// C = alpha·op(A)·op(B) + beta·C for every transposition, shapes that leave partial micro-tiles and
    /// blocks (m past MC = 64, n past NC = 512, k odd and past KC = 384), and alpha, beta ≠ 1.
    /// Two references in Double: with the operands rounded to bf16 first, the kernel may differ only by
    /// Float32 summation, roundingBound(k) (k·2⁻²⁴·Σ|a·b|), plus beta·C's and alpha's roundings (2 more);
    /// against the unrounded operands, each rounded operand is off by at most 2⁻⁸ relative (7 stored
    /// fraction bits, round to nearest), a product by 2·2⁻⁸ + 2⁻¹⁶, so the bound is (2⁻⁷ + 2⁻¹⁶)·Σ|a·b|
    /// on top of the summation's.
    func testKernelMatchesFloat32ReferenceWithinBF16Rounding() throws {
        try requireBF16()
        var rng = Xoshiro256(seed: 7)
        let shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (8, 32, 2), (7, 33, 5), (65, 17, 3), (64, 16, 16),
                                                   (13, 530, 391), (70, 40, 800), (3, 1000, 9)]
        for (m, n, k) in shapes {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                let (alpha, beta): (Float, Float) = (0.75, m % 2 == 0 ? 0 : 0.5)
                let a = Buffer(random: m * k, rng: &rng), b = Buffer(random: k * n, rng: &rng)
                let c = Buffer(random: m * n, rng: &rng)
                // A beta of 0 must not read C: a NaN there would reach the result.
                if beta == 0 { for i in 0..<(m * n) { c[i] = .nan } }
                let before = c.array
                let lda = transposeA ? m : k, ldb = transposeB ? k : n
                bf16_gemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a.pointer, lda, b.pointer, ldb, beta,
                          c.pointer, n)
                var rounded = [Double](), exact = [Double](), magnitudes = [Double]()
                for i in 0..<m {
                    for j in 0..<n {
                        var sumRounded = 0.0, sumExact = 0.0, magnitude = 0.0
                        for s in 0..<k {
                            let x = a[transposeA ? s * m + i : i * k + s], y = b[transposeB ? j * k + s : s * n + j]
                            sumRounded += Double(bf16_round(x)) * Double(bf16_round(y))
                            sumExact += Double(x) * Double(y)
                            magnitude += abs(Double(x) * Double(y))
                        }
                        let old = beta == 0 ? 0 : Double(beta) * Double(before[i * n + j])
                        rounded.append(Double(alpha) * sumRounded + old)
                        exact.append(Double(alpha) * sumExact + old)
                        magnitudes.append(Double(alpha) * magnitude * 1.01 + abs(old))  // 1.01: bf16 may round |x| up
                    }
                }
                let label = "\(m)×\(n)×\(k) transposes \(transposeA)/\(transposeB)"
                assertWithinRounding(c.array, rounded, magnitudes: magnitudes, length: k + 2, label + " vs bf16 operands")
                let bf16Error = 0x1p-7 + 0x1p-16
                for index in 0..<(m * n) {
                    let bound = bf16Error * magnitudes[index] + roundingBound(length: k + 2, magnitude: magnitudes[index])
                    XCTAssertLessThanOrEqual(abs(Double(c[index]) - exact[index]), bound + Double(Float.leastNormalMagnitude),
                                             "\(label) vs Float32 operands, element \(index)")
                }
            }
        }
    }

    /// The whole network's parameter gradients in bf16 against Float32, on the same weights and batch (the
    /// training crop's 128×44, training-mode BatchNorm). A ResNet's gradient is ill-conditioned at bf16's
    /// scale: rounding only the weights to bf16 and computing in Float32 already moves the gradient of
    /// every convolution by 10–25% (BatchNorm's backward subtracts nearly equal terms, ReLU masks flip), so
    /// the bound is relative to that: bf16 rounds, in every product, the weights (as that baseline does),
    /// the activations and the output gradients, three roundings of one size with independent effects,
    /// about √3 ≈ 1.7× the baseline; the bound is 3×. A wrong product would move a gradient by the order of
    /// 100%, 5× the baseline and more.
    func testNetworkGradientsInBF16StayWithinTheSpreadOfBF16RoundedWeights() throws {
        try requireBF16()
        let batch = 16
        var rng = Xoshiro256(seed: 12)
        let input = Buffer(random: batch * 128 * 44, rng: &rng), dlogits = Buffer(random: batch * 10, rng: &rng)
        func gradients(_ precision: Precision, roundingWeights: Bool = false) throws -> (ResNet, [Float]) {
            let model = try ResNet(arch: .resnet18, width: 16, inputHeight: 128, inputWidth: 44, maxBatch: batch, seed: 3)
            model.precision = precision
            if roundingWeights { for i in 0..<model.parameterCount { model.parameters[i] = bf16_round(model.parameters[i]) } }
            _ = try model.forward(input: input.pointer, batch: batch, training: true)
            model.backward(dlogits: dlogits.pointer)
            return (model, Array(UnsafeBufferPointer(start: model.gradients, count: model.parameterCount)))
        }
        let (model, reference) = try gradients(.fp32)
        let mixed = try gradients(.bf16).1, roundedWeights = try gradients(.fp32, roundingWeights: true).1
        func relativeDistance(_ other: [Float], _ range: Range<Int>) -> Double {
            let norm = reference[range].map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
            return zip(reference[range], other[range]).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot() / norm
        }
        for slot in model.parameterSlots where slot.name.hasSuffix("conv1.weight") || slot.name.hasSuffix("conv2.weight")
            || slot.name.hasSuffix("downsample.0.weight") || slot.name == "fc.weight" {
            let distance = relativeDistance(mixed, slot.range), baseline = relativeDistance(roundedWeights, slot.range)
            XCTAssertGreaterThan(distance, 0, "\(slot.name): bf16 must really change the arithmetic")
            XCTAssertLessThan(distance, 3 * baseline, "\(slot.name): bf16's relative gradient error \(distance) against "
                              + "\(baseline) from rounding the weights alone")
        }
    }

    /// The project's promise per precision: the same bits for any thread count (the GEMM grid is fixed by
    /// the shapes, the kernel's order of sums by m, n, k).
    func testBF16TrainingIsBitwiseTheSameForAnyThreadCount() throws {
        try requireBF16()
        let threads = openblas_get_num_threads()
        defer { openblas_set_num_threads(threads) }
        func train(threads: Int) throws -> [Float] {
            let loop = try TrainingStepLoop(arch: .resnet18, width: 4, batch: 6, threads: threads, precision: .bf16,
                                            inputHeight: 32, inputWidth: 20, seed: 5)
            for _ in 0..<3 { try loop.step() }
            return Array(UnsafeBufferPointer(start: loop.model.parameters, count: loop.model.parameterCount))
                + Array(UnsafeBufferPointer(start: loop.model.buffers, count: loop.model.bufferCount))
        }
        let one = try train(threads: 1)
        for count in [2, 3] {
            XCTAssert(one.elementsEqual(try train(threads: count)) { $0.bitPattern == $1.bitPattern }, "1 vs \(count) threads")
        }
    }

    /// DIGITS_DIST_BF16=off stands for a CPU without bf16, so an AVX512_BF16 machine tests the fallback.
    func testPrecisionChoiceFallsBackToFloat32WithAReason() throws {
        XCTAssertEqual(try Precision.choose(mixed: false, override: "on").precision, .fp32, "mixed precision off")
        let off = try Precision.choose(mixed: true, override: "off")
        XCTAssertEqual(off.precision, .fp32)
        XCTAssertTrue(off.reason.contains("DIGITS_DIST_BF16=off"), off.reason)
        let forced = try Precision.choose(mixed: true, override: "on")
        XCTAssertEqual(forced.precision, Precision.bf16Available ? .bf16 : .fp32, forced.reason)
        let automatic = try Precision.choose(mixed: true, override: nil)
        if let rates = Precision.arithmeticRates {
            XCTAssertGreaterThan(rates.bf16, 0)
            XCTAssertGreaterThan(rates.fp32, 0)
            XCTAssertTrue(automatic.reason.contains("GFLOP/s per core"), automatic.reason)
        } else {
            XCTAssertEqual(automatic.precision, .fp32)
            XCTAssertTrue(automatic.reason.contains("no AVX512_BF16"), automatic.reason)
        }
        XCTAssertThrowsError(try Precision.choose(mixed: true, override: "yes")) { error in
            XCTAssertEqual("\(error)", "invalid DIGITS_DIST_BF16 yes: must be on, off or auto")
        }
    }
}
