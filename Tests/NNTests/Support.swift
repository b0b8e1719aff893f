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

/// A standalone context holding one layer's parameters, for layer tests.
func makeContext() -> NetworkContext { NetworkContext() }

func randomize(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ rng: inout Xoshiro256, scale: Float = 1) {
    for i in 0..<count { p[i] = Float(rng.nextGaussian()) * scale }
}
