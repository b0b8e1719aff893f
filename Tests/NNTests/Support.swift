import XCTest
@testable import NN

/// A Float buffer for tests, freed with the object.
final class Buffer {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int, value: Float = 0) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: value, count: max(count, 1))
    }

    convenience init(random count: Int, rng: inout Xoshiro256, scale: Float = 1) {
        self.init(count)
        for i in 0..<count { pointer[i] = Float(rng.nextGaussian()) * scale }
    }

    deinit { pointer.deallocate() }

    subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Σ x·r in Double: a scalar "loss" whose gradient with respect to x is exactly r.
func projection(_ x: UnsafePointer<Float>, _ r: UnsafePointer<Float>, _ count: Int) -> Double {
    var sum = 0.0
    for i in 0..<count { sum += Double(x[i]) * Double(r[i]) }
    return sum
}

/// Central-difference gradient of `loss` with respect to each of `count` floats at `x`.
func numericGradient(_ x: UnsafeMutablePointer<Float>, count: Int, step: Float, loss: () -> Double) -> [Double] {
    (0..<count).map { i in
        let saved = x[i]
        x[i] = saved + step
        let plus = loss()
        x[i] = saved - step
        let minus = loss()
        x[i] = saved
        return (plus - minus) / Double(2 * step)
    }
}

/// Max |analytic − numeric| must be below `tolerance` × max |numeric| (plus a tiny floor for all-zero
/// gradients): relative to the gradient's scale, so one small entry cannot hide or fake a failure.
func assertGradientsClose(_ analytic: [Float], _ numeric: [Double], tolerance: Double, _ message: String,
                          file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(analytic.count, numeric.count, message, file: file, line: line)
    let scale = max(numeric.map(abs).max() ?? 0, 1e-6)
    var worst = 0.0, worstIndex = 0
    for i in 0..<analytic.count where abs(Double(analytic[i]) - numeric[i]) > worst {
        worst = abs(Double(analytic[i]) - numeric[i])
        worstIndex = i
    }
    XCTAssertLessThan(worst / scale, tolerance,
                      "\(message): entry \(worstIndex) analytic \(analytic[worstIndex]) numeric \(numeric[worstIndex]) (scale \(scale))",
                      file: file, line: line)
}

/// How far a float computation of a sum of `length` products may be from the exact sum, whatever order it
/// adds them in: length·ε·Σ|products| (Higham, Accuracy and Stability of Numerical Algorithms, §3.1 and
/// §4.2), times `growth` where the algorithm's intermediate values outgrow the products (Winograd).
func roundingBound(length: Int, magnitude: Double, growth: Double = 1) -> Double {
    growth * Double(length) * Double(Float.ulpOfOne) * magnitude
}

/// `actual` within `roundingBound(length:magnitude:growth:)` of `exact` for every element: the
/// worst element's error as a fraction of its bound must be at most 1.
func assertWithinRounding(_ actual: [Float], _ exact: [Double], magnitudes: [Double], length: Int, growth: Double = 1,
                          _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, exact.count, message, file: file, line: line)
    var worst = 0.0, worstIndex = 0
    for i in 0..<min(actual.count, exact.count) {
        // The smallest normal float keeps the bound positive where every product is zero.
        let bound = max(roundingBound(length: length, magnitude: magnitudes[i], growth: growth), Double(Float.leastNormalMagnitude))
        let ratio = abs(Double(actual[i]) - exact[i]) / bound
        if !(ratio <= worst) { (worst, worstIndex) = (ratio, i) }
    }
    XCTAssertLessThanOrEqual(worst, 1, "\(message): element \(worstIndex) is \(actual.isEmpty ? 0 : actual[worstIndex]), "
                             + "exactly \(exact.isEmpty ? 0 : exact[worstIndex]): error / bound", file: file, line: line)
}

/// A standalone context holding one layer's parameters, for layer tests.
func makeContext() -> NetworkContext { NetworkContext() }

func randomize(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ rng: inout Xoshiro256, scale: Float = 1) {
    for i in 0..<count { p[i] = Float(rng.nextGaussian()) * scale }
}
