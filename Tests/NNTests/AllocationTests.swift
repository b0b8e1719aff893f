import Foundation
import XCTest
import NN

/// "No allocation in the steady-state step", measured: scripts/count-step-allocations.sh preloads a
/// malloc-counting shim exporting `nn_allocation_count` (calls from anywhere but OpenBLAS) and
/// `nn_openblas_allocation_count`; without it this test skips. Meant for release builds (how training
/// runs): a debug build boxes some closure contexts that the optimiser keeps on the stack.
final class AllocationTests: XCTestCase {
    func testSteadyStateTrainingStepsDoNotAllocate() throws {
        guard let symbol = dlsym(nil, "nn_allocation_count") else {  // nil: RTLD_DEFAULT, every loaded object
            throw XCTSkip("run scripts/count-step-allocations.sh to count allocations")
        }
        let allocationCount = unsafeBitCast(symbol, to: (@convention(c) () -> Int).self)
        let openBLASAllocationCount = unsafeBitCast(dlsym(nil, "nn_openblas_allocation_count"),
                                                    to: (@convention(c) () -> Int).self)
        // Plain BatchNorm, and SubSpectral (architecture.subspectral_bands), whose strided runs are walked by closures.
        for subSpectralBands in [1, 4] {
            let batch = 4
            let model = try ResNet(arch: .resnet18, width: 8, inputHeight: 64, inputWidth: 20, maxBatch: batch, dropout: 0.1,
                                   subSpectralBands: subSpectralBands, seed: 1)
            let optimizer = try AdamW(parameterCount: model.parameterCount)
            let schedule = try CosineSchedule(base: 1e-3, warmupSteps: 2, totalSteps: 100)
            let input = UnsafeMutablePointer<Float>.allocate(capacity: batch * 64 * 20)
            input.initialize(repeating: 0.5, count: batch * 64 * 20)
            let labels = UnsafeMutablePointer<Int>.allocate(capacity: batch)
            labels.initialize(repeating: 3, count: batch)
            let dlogits = UnsafeMutablePointer<Float>.allocate(capacity: batch * 10)
            defer { input.deallocate(); labels.deallocate(); dlogits.deallocate() }
            var readyCalls = 0
            model.gradientsReady = { _ in readyCalls += 1 }
            model.batchNormReduce = { _, _ in }

            func step(_ index: Int) throws {
                let logits = try model.forward(input: input, batch: batch, training: true)
                _ = try Loss.binaryCrossEntropyWithLogits(logits: logits, labels: labels, batch: batch, classes: 10,
                                                          dlogits: dlogits)
                model.backward(dlogits: dlogits)
                _ = try clipGradientNorm(model.gradients, count: model.parameterCount, maxNorm: 1)
                try optimizer.update(parameters: model.parameters, gradients: model.gradients,
                                     learningRate: schedule.learningRate(atStep: index))
                model.zeroGradients()
                _ = try model.forward(input: input, batch: 2, training: false)
            }
            // The weights' moving average (training.ema_decay) is part of the step when it is on.
            let average = try WeightAverage(count: model.parameterCount, decay: 0.99)
            average.reset(to: model.parameters)
            // Every precision this CPU runs: bf16's packing buffers are allocated once per thread, in warm-up.
            for precision in Precision.allCases where precision == .fp32 || Precision.bf16Available {
                model.precision = precision
                for index in 0..<3 { try step(index) }  // warm-up: lazy runtime metadata, thread pools
                let (before, openBLASBefore) = (allocationCount(), openBLASAllocationCount())
                for index in 3..<13 {
                    try step(index)
                    average.update(model.parameters, step: index)
                }
                let allocations = allocationCount() - before
                print("allocations in 10 steady-state training steps (\(precision.name)\(subSpectralBands > 1 ? ", BatchNorm in \(subSpectralBands) bands" : "")): "
                      + "\(allocations) outside OpenBLAS, "
                      + "\(openBLASAllocationCount() - openBLASBefore) inside sgemm")
                XCTAssertEqual(allocations, 0, "\(precision.name), \(subSpectralBands) bands")
            }
            XCTAssertGreaterThan(readyCalls, 0)
        }
    }
}
