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
        openblas_set_num_threads(1)
        let model = try ResNet(arch: .resnet18, width: 16, inputHeight: 128, inputWidth: 44, maxBatch: 32, seed: 0)
        let mirror = Mirror(reflecting: model)
        let blocks = mirror.children.first { $0.label == "blocks" }!.value as! [ResidualBlock]
        let stem = mirror.children.first { $0.label == "stem" }!.value as! ConvBatchNorm
        var units = [stem]
        for block in blocks { units += block.mainPath + (block.projection.map { [$0] } ?? []) }
        var total = 0.0
        for unit in units {
            let g = unit.conv.geometry
            if g.kernel == 1 && g.stride == 1 { continue }
            var t0 = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0)
            for _ in 0..<5 {
                im2col(g, batch: 32, image: b, columns: c, scatter: false)
                im2col(g, batch: 32, image: b, columns: c, scatter: false)
                im2col(g, batch: 32, image: b, columns: c, scatter: true)
            }
            var t1 = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1)
            let ms = (Double(t1.tv_sec - t0.tv_sec) * 1e3 + Double(t1.tv_nsec - t0.tv_nsec) * 1e-6) / 5
            total += ms
            print(String(format: "%@ c%d k%d s%d %dx%d: %.2f ms", unit.conv.weight.name, g.channels, g.kernel, g.stride, g.height, g.width, ms))
        }
        print("total ms", total)
    }
}
