import XCTest
import Foundation
import CBLAS
@testable import NN
final class ScratchTests: XCTestCase {
    func testScratch() throws {
        guard ProcessInfo.processInfo.environment["NN_SCRATCH"] != nil else { return }
        openblas_set_num_threads(2)
        func time(_ label: String, flops: Double, _ body: () -> Void) {
            body()
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<5 { body() }
            let s = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / 5
            print(String(format: "%@: %.2f ms %.1f GFLOP/s", label, s * 1e3, flops / s * 1e-9))
        }
        let big = UnsafeMutablePointer<Float>.allocate(capacity: 40_000_000); big.initialize(repeating: 0.5, count: 40_000_000)
        let a = big, b = big + 10_000_000, c = big + 20_000_000
        print(String(cString: openblas_get_corename()), openblas_get_num_threads())
        for threads in [1, 2] {
            openblas_set_num_threads(Int32(threads))
            for (m, n, k) in [(64, 11264, 576), (11264, 64, 576), (64, 576, 11264), (576, 11264, 64), (2048, 2048, 2048), (512, 11264, 576)] {
                let f = 2.0 * Double(m * n * k)
                time("t\(threads) NN \(m)x\(n)x\(k)", flops: f) { gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a, lda: k, c, ldb: n, beta: 0, b, ldc: n) }
                time("t\(threads) NT \(m)x\(n)x\(k)", flops: f) { gemm(transposeA: false, transposeB: true, m: m, n: n, k: k, a, lda: k, c, ldb: k, beta: 0, b, ldc: n) }
                time("t\(threads) TN \(m)x\(n)x\(k)", flops: f) { gemm(transposeA: true, transposeB: false, m: m, n: n, k: k, a, lda: m, c, ldb: n, beta: 0, b, ldc: n) }
            }
        }
    }
}
