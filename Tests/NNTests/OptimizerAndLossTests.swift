import Foundation
import XCTest
@testable import NN

final class LossTests: XCTestCase {
    // logits [[0, 2], [−1, 3]], labels [1, 0]; expected values from the formulas, checked against
    // torch.nn.functional.binary_cross_entropy_with_logits / cross_entropy.
    private let logits: [Float] = [0, 2, -1, 3]
    private let labels = [1, 0]

    func testBinaryCrossEntropyWithLogitsMatchesHandComputedValues() throws {
        var dlogits = [Float](repeating: .nan, count: 4)
        let loss = try Loss.binaryCrossEntropyWithLogits(logits: logits, labels: labels, batch: 2, classes: 2,
                                                         dlogits: &dlogits)
        // Per element max(x,0) − x·y + log(1 + e^−|x|), mean over 4: (log 2 + log(1+e⁻²) + 1 + log(1+e⁻¹) + 3 + log(1+e⁻³)) / 4
        let softplus = { (x: Double) -> Double in log1p(exp(-x)) }
        let expected: Double = (log(2.0) + softplus(2) + 1 + softplus(1) + 3 + softplus(3)) / 4
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-6)
        XCTAssertEqual(loss, 1.29548109, accuracy: 1e-6)
        let sigmoid = { (x: Double) in 1 / (1 + exp(-x)) }
        let expectedGradient = [sigmoid(0) - 0, sigmoid(2) - 1, sigmoid(-1) - 1, sigmoid(3) - 0].map { $0 / 4 }
        for i in 0..<4 { XCTAssertEqual(Double(dlogits[i]), expectedGradient[i], accuracy: 1e-7) }
        XCTAssertEqual(dlogits[0], 0.125)
    }

    func testSoftmaxCrossEntropyMatchesHandComputedValues() throws {
        var dlogits = [Float](repeating: .nan, count: 4)
        let loss = try Loss.softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 2, dlogits: &dlogits)
        // Row 0: logΣe^x − x₁ = log(1 + e²) − 2; row 1: log(e⁻¹ + e³) + 1.
        let row0: Double = log(1 + exp(2.0)) - 2, row1: Double = log(exp(-1.0) + exp(3.0)) + 1
        let expected = (row0 + row1) / 2
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-6)
        XCTAssertEqual(loss, 2.07253885, accuracy: 1e-6)
        let p0: Double = 1 / (1 + exp(2.0)), p1: Double = exp(-1.0) / (exp(-1.0) + exp(3.0))
        let expectedGradient = [p0, -p0, p1 - 1, 1 - p1].map { $0 / 2 }
        for i in 0..<4 { XCTAssertEqual(Double(dlogits[i]), expectedGradient[i], accuracy: 1e-7) }
    }

    func testLossesStayFiniteForHugeLogits() throws {
        let huge: [Float] = [1000, -1000, -1000, 1000]
        var dlogits = [Float](repeating: 0, count: 4)
        let bce = try Loss.binaryCrossEntropyWithLogits(logits: huge, labels: [1, 0], batch: 2, classes: 2, dlogits: &dlogits)
        XCTAssertEqual(bce, 1000, accuracy: 1e-3)  // two elements of 2000 each, mean over 4
        XCTAssert(dlogits.allSatisfy(\.isFinite))
        let ce = try Loss.softmaxCrossEntropy(logits: huge, labels: [1, 0], batch: 2, classes: 2, dlogits: &dlogits)
        XCTAssertEqual(ce, 2000, accuracy: 1e-3)
        XCTAssert(dlogits.allSatisfy(\.isFinite))
    }

    func testLabelOutOfRangeThrowsOneLine() {
        var dlogits = [Float](repeating: 0, count: 4)
        XCTAssertThrowsError(try Loss.softmaxCrossEntropy(logits: logits, labels: [1, 2], batch: 2, classes: 2,
                                                          dlogits: &dlogits)) { error in
            XCTAssertEqual("\(error)", "label 2 of sample 1 is out of range 0..<2")
        }
        XCTAssertEqual(dlogits, [0, 0, 0, 0], "nothing is written before the labels are validated")
    }
}

final class OptimizerTests: XCTestCase {
    func testAdamWMatchesThePyTorchFormula() throws {
        let optimizer = try AdamW(parameterCount: 3, weightDecay: 0.01)
        var parameters: [Float] = [1, -2, 0.5]
        // Step 1 by hand for p = 1, g = 0.5, lr = 0.1: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25,
        // p = 1·(1 − 0.1·0.01) − 0.1·0.5/(0.5 + 1e−8) = 0.899.
        try optimizer.update(parameters: &parameters, gradients: [0.5, 0.1, -3], learningRate: 0.1)
        XCTAssertEqual(parameters[0], 0.899, accuracy: 1e-6)
        // torch.optim.AdamW(lr=0.1, weight_decay=0.01), two steps on these gradients:
        XCTAssertEqual(parameters, [0.899000049, -2.09800005, 0.5995].map { Float($0) })
        try optimizer.update(parameters: &parameters, gradients: [-0.25, 0.2, 1], learningRate: 0.1)
        let torch: [Float] = [0.871467352, -2.19242024, 0.638922334]
        for i in 0..<3 { XCTAssertEqual(parameters[i], torch[i], accuracy: 2e-7) }
        XCTAssertEqual(optimizer.step, 2)
    }

    /// The update runs sixteen lanes at a time plus a padded tail; both must give the scalar formula's bits.
    func testVectorisedUpdateEqualsTheScalarFormulaBitForBit() throws {
        let count = 37, learningRate = 3e-3, weightDecay = 0.01
        let optimizer = try AdamW(parameterCount: count, weightDecay: weightDecay)
        var rng = Xoshiro256(seed: 5)
        var parameters = (0..<count).map { _ in Float(rng.nextGaussian()) }
        var expected = parameters, m = [Float](repeating: 0, count: count), v = m
        for step in 1...3 {
            let gradients = (0..<count).map { _ in Float(rng.nextGaussian()) }
            try optimizer.update(parameters: &parameters, gradients: gradients, learningRate: Float(learningRate))
            let decay = Float(1 - learningRate * weightDecay)
            let stepSize = Float(learningRate / (1 - pow(0.9, Double(step))))
            let correction2Root = Float((1 - pow(0.999, Double(step))).squareRoot())
            for i in 0..<count {
                m[i] += (gradients[i] - m[i]) * Float(1 - 0.9)
                v[i] = v[i] * Float(0.999) + Float(1 - 0.999) * gradients[i] * gradients[i]
                expected[i] = expected[i] * decay - stepSize * m[i] / (v[i].squareRoot() / correction2Root + Float(1e-8))
            }
            XCTAssertEqual(parameters.map(\.bitPattern), expected.map(\.bitPattern), "step \(step)")
        }
    }

    func testInvalidLearningRatesThrowBeforeTouchingParameters() throws {
        let optimizer = try AdamW(parameterCount: 1)
        var parameters: [Float] = [1]
        for bad: Float in [0, -1, .nan, .infinity] {
            XCTAssertThrowsError(try optimizer.update(parameters: &parameters, gradients: [1], learningRate: bad)) { error in
                XCTAssertEqual("\(error)", "invalid learning rate \(bad): must be a positive finite number")
            }
        }
        XCTAssertEqual(parameters, [1])
        XCTAssertEqual(optimizer.step, 0)
        XCTAssertThrowsError(try CosineSchedule(base: .nan, warmupSteps: 1, totalSteps: 10))
        XCTAssertThrowsError(try CosineSchedule(base: 1e-3, warmupSteps: 10, totalSteps: 10))
        XCTAssertThrowsError(try AdamW(parameterCount: 1, beta1: 1))
    }

    func testCosineScheduleWithWarmUp() throws {
        let schedule = try CosineSchedule(base: 1e-3, minimum: 1e-5, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(schedule.learningRate(atStep: 0), 1e-4, accuracy: 1e-9)  // warm-up starts above zero
        XCTAssertEqual(schedule.learningRate(atStep: 4), 5e-4, accuracy: 1e-9)
        XCTAssertEqual(schedule.learningRate(atStep: 9), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(schedule.learningRate(atStep: 10), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(schedule.learningRate(atStep: 35), 1e-5 + (1e-3 - 1e-5) * Float(0.5 * (1 + cos(Double.pi / 4))),
                       accuracy: 1e-9)
        XCTAssertEqual(schedule.learningRate(atStep: 60), 5.05e-4, accuracy: 1e-9)
        XCTAssertEqual(schedule.learningRate(atStep: 110), 1e-5, accuracy: 1e-9)
        XCTAssertEqual(schedule.learningRate(atStep: 500), 1e-5, accuracy: 1e-9)
        let noWarmUp = try CosineSchedule(base: 2, warmupSteps: 0, totalSteps: 4)
        XCTAssertEqual((0..<4).map { noWarmUp.learningRate(atStep: $0) }, [2, 1 + Float(cos(Double.pi / 4)), 1, 1 - Float(cos(Double.pi / 4))].map { $0 },
                       "pure function of the step")
    }

    func testGlobalNormClipping() throws {
        var gradients: [Float] = [3, 4, 0]
        let norm = try clipGradientNorm(&gradients, count: 3, maxNorm: 1)
        XCTAssertEqual(norm, 5)
        XCTAssertEqual(gradients[0], 3 / (5 + 1e-6), accuracy: 1e-7)
        XCTAssertEqual(gradients[1], 4 / (5 + 1e-6), accuracy: 1e-7)
        var small: [Float] = [0.3, 0.4]
        XCTAssertEqual(try clipGradientNorm(&small, count: 2, maxNorm: 1), 0.5, accuracy: 1e-7)
        XCTAssertEqual(small, [0.3, 0.4], "below the limit nothing changes")
        XCTAssertThrowsError(try clipGradientNorm(&small, count: 2, maxNorm: 0))
    }
}

final class SoftTargetLossTests: XCTestCase {
    /// One-hot targets give exactly the label losses; mixed targets give the gradient of the loss
    /// (checked by central differences in Double).
    func testSoftTargetsAgreeWithLabelsAndWithFiniteDifferences() throws {
        let logits: [Float] = [0.3, -1.2, 2.0, 0.5, 0.1, -0.4]
        let labels = [2, 0]
        let oneHot: [Float] = [0, 0, 1, 1, 0, 0]
        let mixed: [Float] = [0.3, 0, 0.7, 0.6, 0.4, 0]
        typealias Soft = (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>) throws -> Float
        typealias Hard = (UnsafePointer<Float>, UnsafePointer<Int>, Int, Int, UnsafeMutablePointer<Float>) throws -> Float
        let pairs: [(Soft, Hard)] = [
            ({ try Loss.binaryCrossEntropyWithLogits(logits: $0, targets: $1, batch: $2, classes: $3, dlogits: $4) },
             { try Loss.binaryCrossEntropyWithLogits(logits: $0, labels: $1, batch: $2, classes: $3, dlogits: $4) }),
            ({ try Loss.softmaxCrossEntropy(logits: $0, targets: $1, batch: $2, classes: $3, dlogits: $4) },
             { try Loss.softmaxCrossEntropy(logits: $0, labels: $1, batch: $2, classes: $3, dlogits: $4) }),
        ]
        for (soft, hard) in pairs {
            var softGradient = [Float](repeating: 0, count: 6), hardGradient = [Float](repeating: 0, count: 6)
            XCTAssertEqual(try soft(logits, oneHot, 2, 3, &softGradient), try hard(logits, labels, 2, 3, &hardGradient))
            XCTAssertEqual(softGradient, hardGradient)
            var gradient = [Float](repeating: 0, count: 6), scratch = [Float](repeating: 0, count: 6)
            _ = try soft(logits, mixed, 2, 3, &gradient)
            for i in 0..<6 {
                var plus = logits, minus = logits
                plus[i] += 1e-2
                minus[i] -= 1e-2
                let numeric = (Double(try soft(plus, mixed, 2, 3, &scratch)) - Double(try soft(minus, mixed, 2, 3, &scratch))) / 2e-2
                XCTAssertEqual(Double(gradient[i]), numeric, accuracy: 2e-4, "logit \(i)")
            }
        }
    }
}

final class ParameterGroupTests: XCTestCase {
    /// Groups at one rate are exactly one update; a group at another rate moves only its own parameters differently.
    func testGroupsAtOneRateEqualOneUpdateAndRatesApplyPerGroup() throws {
        let count = 10
        func run(_ update: (AdamW, UnsafeMutablePointer<Float>, UnsafePointer<Float>) throws -> Void) throws -> [Float] {
            let optimizer = try AdamW(parameterCount: count, weightDecay: 0.1)
            var parameters = (0..<count).map { Float($0) * 0.1 - 0.3 }
            let gradients = (0..<count).map { Float($0 % 3) - 0.7 }
            for _ in 0..<3 { try update(optimizer, &parameters, gradients) }
            return parameters
        }
        let single = try run { try $0.update(parameters: $1, gradients: $2, learningRate: 1e-2) }
        let grouped = try run { try $0.update(parameters: $1, gradients: $2, groups: [(0..<4, 1e-2), (4..<10, 1e-2)]) }
        XCTAssertEqual(single, grouped)
        let differential = try run { try $0.update(parameters: $1, gradients: $2, groups: [(0..<4, 1e-3), (4..<10, 1e-2)]) }
        XCTAssertEqual(Array(differential[4...]), Array(single[4...]))
        XCTAssertNotEqual(Array(differential[..<4]), Array(single[..<4]))
        let optimizer = try AdamW(parameterCount: count)
        var parameters = [Float](repeating: 0, count: count)
        XCTAssertThrowsError(try optimizer.update(parameters: &parameters, gradients: parameters, groups: [(0..<4, 1e-2)]))
    }
}

final class WeightAverageTests: XCTestCase {
    /// Against the definition in a naive loop: the ramp min(decay, (1 + t)/(10 + t)) for the first steps,
    /// then the decay; swapping twice gives both buffers back.
    func testAverageFollowsTheRampedDecayAndSwapsBack() throws {
        let count = 70_000  // past one parallel chunk (2¹⁶), so the threaded split is exercised
        var rng = Xoshiro256(seed: 3)
        let start = Buffer(random: count, rng: &rng)
        let average = try WeightAverage(count: count, decay: 0.99)
        average.reset(to: start.pointer)
        var expected = start.array.map(Double.init)
        for step in 1...30 {
            let current = Buffer(random: count, rng: &rng)
            average.update(current.pointer, step: step)
            let d = Double(Float(min(0.99, Double(1 + step) / Double(10 + step))))
            XCTAssertEqual(Double(average.decay(atStep: step)), d)
            for i in 0..<count { expected[i] = d * expected[i] + (1 - d) * Double(current[i]) }
        }
        XCTAssertEqual(average.decay(atStep: 1000), 0.99)
        // Float arithmetic of 30 updates, each within a few ε of the Double one.
        for i in stride(from: 0, to: count, by: 997) {
            XCTAssertEqual(Double(average.values[i]), expected[i], accuracy: 1e-5 * max(1, abs(expected[i])))
        }
        let weights = Buffer(random: count, rng: &rng), before = weights.array, averaged = Array(UnsafeBufferPointer(start: average.values, count: count))
        average.swap(with: weights.pointer)
        XCTAssertEqual(weights.array, averaged)
        average.swap(with: weights.pointer)
        XCTAssertEqual(weights.array, before)
        XCTAssertThrowsError(try WeightAverage(count: 4, decay: 1))
    }
}
