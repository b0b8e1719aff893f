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
        for (cout, cin, k, h, w, s) in [(16, 16, 3, 32, 11, 1), (64, 64, 3, 32, 11, 1), (128, 128, 3, 4, 2, 1), (16, 1, 7, 128, 44, 2), (64, 32, 3, 16, 6, 2)] {
            let g = ConvGeometry(channels: cin, height: h, width: w, kernel: k, stride: s, padding: k / 2)
            let tag = "\(cout)x\(cin)x\(k) \(h)x\(w) s\(s)"
            time(tag + " im2col", flops: 0) { im2col(g, batch: 32, image: b, columns: c, scatter: false) }
            time(tag + " col2im", flops: 0) { im2col(g, batch: 32, image: b, columns: c, scatter: true) }
        }
    }
}
