import CBLAS
import Foundation
import XCTest
@testable import NN

final class ResNetTests: XCTestCase {
    /// torchvision's published totals for 3 input channels and 1000 classes are resnet18 11,689,512,
    /// resnet34 21,797,672, resnet50 25,557,032. Ours differ only in conv1 (64·Cin·7·7) and fc
    /// (C·classes + classes with C = 512, 512, 2048):
    ///   resnet18: 11,689,512 − 64·3·49 + 64·1·49 − (512·1000 + 1000) + (512·10 + 10) = 11,175,370
    ///   resnet34: 21,797,672 − 6,272 − 507,870                                           = 21,283,530
    ///   resnet50: 25,557,032 − 6,272 − (2048·1000 + 1000) + (2048·10 + 10)               = 23,522,250
    ///   resnet50 with 3 input channels and 10 classes (no conv1 change):                  23,528,522
    func testParameterCountsEqualTorchvision() throws {
        let expected: [(Architecture, Int, Int)] = [
            (.resnet18, 1, 11_175_370), (.resnet34, 1, 21_283_530), (.resnet50, 1, 23_522_250), (.resnet50, 3, 23_528_522),
        ]
        for (architecture, channels, count) in expected {
            let model = try ResNet(arch: architecture, width: 64, inputChannels: channels, inputHeight: 32, inputWidth: 32,
                                   maxBatch: 1, seed: 0)
            XCTAssertEqual(model.parameterCount, count, "\(architecture) with \(channels) input channel(s)")
            XCTAssertEqual(model.parameterSlots.last?.range.upperBound, count)
        }
    }

    func testSlotsFollowTorchvisionStateDictOrderAndTileTheBuffers() throws {
        let model = try ResNet(arch: .resnet50, width: 8, inputHeight: 32, inputWidth: 32, maxBatch: 1, seed: 0)
        let names = model.parameterSlots.map(\.name)
        XCTAssertEqual(Array(names.prefix(9)), [
            "conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
            "layer1.0.conv2.weight", "layer1.0.bn2.weight", "layer1.0.bn2.bias",
        ])
        XCTAssert(names.contains("layer1.0.downsample.0.weight") && names.contains("layer4.2.bn3.bias"))
        XCTAssertEqual(Array(names.suffix(2)), ["fc.weight", "fc.bias"])
        XCTAssertEqual(model.parameterSlots.first { $0.name == "layer2.0.conv2.weight" }?.shape, [16, 16, 3, 3])
        XCTAssertEqual(model.parameterSlots.first { $0.name == "fc.weight" }?.shape, [10, 256])
        var offset = 0
        for slot in model.parameterSlots {
            XCTAssertEqual(slot.offset, offset, slot.name)
            offset += slot.count
        }
        XCTAssertEqual(model.bufferSlots.prefix(2).map(\.name), ["bn1.running_mean", "bn1.running_var"])
        XCTAssertEqual(model.bufferCount, model.bufferSlots.map(\.count).reduce(0, +))
    }

    func testInitialisationIsTorchvisionLikeAndSeeded() throws {
        let model = try ResNet(arch: .resnet18, width: 16, inputHeight: 32, inputWidth: 32, maxBatch: 1, seed: 7)
        let slots = Dictionary(uniqueKeysWithValues: model.parameterSlots.map { ($0.name, $0) })
        // kaiming_normal fan_out: std = √(2 / (Cout·k·k)); layer3.1.conv1 is 64×64×3×3 → √(2/576).
        let conv = slots["layer3.1.conv1.weight"]!
        let values = (0..<conv.count).map { Double(model.parameters[conv.offset + $0]) }
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.003)
        XCTAssertEqual(std, (2.0 / 576).squareRoot(), accuracy: 0.002)
        let bn = slots["layer3.1.bn1.weight"]!
        XCTAssert((0..<bn.count).allSatisfy { model.parameters[bn.offset + $0] == 1 && model.parameters[bn.offset + bn.count + $0] == 0 })
        let fc = slots["fc.weight"]!
        XCTAssert((0..<(fc.count + 10)).allSatisfy { abs(model.parameters[fc.offset + $0]) <= 1 / Float(128).squareRoot() })
        let again = try ResNet(arch: .resnet18, width: 16, inputHeight: 32, inputWidth: 32, maxBatch: 1, seed: 7)
        let other = try ResNet(arch: .resnet18, width: 16, inputHeight: 32, inputWidth: 32, maxBatch: 1, seed: 8)
        XCTAssert((0..<model.parameterCount).allSatisfy { model.parameters[$0] == again.parameters[$0] })
        XCTAssertFalse((0..<model.parameterCount).allSatisfy { model.parameters[$0] == other.parameters[$0] })
    }

    /// The whole network's forward and backward against PyTorch float64 autograd on the same weights and
    /// data (see scripts/nn-reference-gradients.py for the formulas): ResNet-18 in training mode, ResNet-50
    /// (bottlenecks) in eval mode. Whole-network finite differences in float32 are not used: with ReLU and
    /// max-pool kinks and BatchNorm over 2–8 values per channel they scatter by tens of percent (measured);
    /// each layer is checked against finite differences instead.
    func testWholeNetworkGradientsMatchPyTorchAutograd() throws {
        // The sizes and tolerances of scripts/nn-reference-gradients.py's cases (see its notes on conditioning).
        for (architecture, training, batch, height, width, relativeTolerance) in
            [(Architecture.resnet18, true, 4, 64, 40, 1e-4), (.resnet50, false, 2, 32, 20, 2e-3)] {
            let model = try ResNet(arch: architecture, width: 4, inputHeight: height, inputWidth: width, maxBatch: batch, seed: 0)
            for (t, slot) in model.parameterSlots.enumerated() {
                for i in 0..<slot.count {
                    let s = sin(0.731 * Double(i) + 1.917 * Double(t) + 0.3)
                    let value: Double
                    if slot.shape.count == 4 {
                        value = (4.0 / Double(slot.shape[0] * slot.shape[2] * slot.shape[3])).squareRoot() * s
                    } else if slot.name == "fc.weight" {
                        value = s / Double(slot.shape[1]).squareRoot()
                    } else {
                        value = slot.name.hasSuffix(".weight") ? 1 + 0.2 * s : 0.2 * s
                    }
                    model.parameters[slot.offset + i] = Float(value)
                }
            }
            let input = Buffer(batch * height * width), upstream = Buffer(batch * 10)
            for j in 0..<input.count {
                let x = Double(j)
                input[j] = Float(sin(0.377 * x) + sin(1.733 * x + 0.4) * cos(0.0917 * x))
            }
            for j in 0..<upstream.count { upstream[j] = Float(cos(0.913 * Double(j))) }
            let reference = try XCTUnwrap(referenceGradients[architecture.rawValue + (training ? "-train" : "-eval")])

            let logits = try model.forward(input: input.pointer, batch: batch, training: training)
            for k in 0..<(batch * 10) { XCTAssertEqual(Double(logits[k]), reference.logits[k], accuracy: 1e-4) }
            var ready: [Range<Int>] = []
            model.gradientsReady = { ready.append($0) }
            model.backward(dlogits: upstream.pointer)
            // Hook ranges are strictly decreasing and tile the gradient buffer.
            XCTAssertEqual(ready.first?.upperBound, model.parameterCount)
            XCTAssertEqual(ready.last?.lowerBound, 0)
            XCTAssert(zip(ready, ready.dropFirst()).allSatisfy { $0.lowerBound == $1.upperBound })

            XCTAssertEqual(model.parameterSlots.map(\.name), reference.tensors.map(\.0))
            for (t, (slot, (name, norm, projection))) in zip(model.parameterSlots, reference.tensors).enumerated() {
                var squares = 0.0, dot = 0.0
                for i in 0..<slot.count {
                    let g = Double(model.gradients[slot.offset + i])
                    squares += g * g
                    dot += g * cos(0.5 * Double(i) + Double(t))
                }
                let tolerance = relativeTolerance * norm
                XCTAssertEqual(squares.squareRoot(), norm, accuracy: tolerance, "\(architecture) \(name) gradient norm")
                // |g·d| ≤ ‖g‖·‖d‖, so the projection's error is measured on that scale.
                XCTAssertEqual(dot, projection, accuracy: tolerance * Double(slot.count).squareRoot(),
                               "\(architecture) \(name) gradient projection")
            }
        }
    }

    func testSameSeedGivesBitwiseIdenticalWeightsAfterTraining() throws {
        func train(seed: UInt64) throws -> [Float] {
            let batch = 3
            let model = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 20, maxBatch: batch,
                                   dropout: 0.2, seed: seed)
            let optimizer = try AdamW(parameterCount: model.parameterCount)
            var rng = Xoshiro256(seed: 99)
            let input = Buffer(random: batch * 32 * 20, rng: &rng)
            let dlogits = Buffer(batch * 10)
            for step in 0..<4 {
                let labels = (0..<batch).map { ($0 + step) % 10 }
                let logits = try model.forward(input: input.pointer, batch: batch, training: true)
                _ = try Loss.binaryCrossEntropyWithLogits(logits: logits, labels: labels, batch: batch, classes: 10,
                                                          dlogits: dlogits.pointer)
                model.backward(dlogits: dlogits.pointer)
                try optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: 1e-2)
                model.zeroGradients()
            }
            return Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount))
                + Array(UnsafeBufferPointer(start: model.buffers, count: model.bufferCount))
        }
        let threads = openblas_get_num_threads()
        defer { openblas_set_num_threads(threads) }
        openblas_set_num_threads(1)
        let first = try train(seed: 5), second = try train(seed: 5), other = try train(seed: 6)
        XCTAssert(first.elementsEqual(second) { $0.bitPattern == $1.bitPattern }, "same seed must be bitwise identical")
        XCTAssertNotEqual(first, other)
        // The parallel loops split by whole channels/elements, GEMMs run as a grid of calls fixed by their
        // shapes and per-thread partials are summed in a fixed order, so the thread count does not change a
        // single bit either, whichever kernels OpenBLAS picked for this CPU.
        for threads: Int32 in [2, 3] {
            openblas_set_num_threads(threads)
            let threaded = try train(seed: 5)
            XCTAssert(first.elementsEqual(threaded) { $0.bitPattern == $1.bitPattern }, "1 vs \(threads) threads")
        }
    }

    func testModelsUsedFromTwoThreadsAtOnceGiveTheSerialResults() throws {
        let threads = openblas_get_num_threads()
        defer { openblas_set_num_threads(threads) }
        openblas_set_num_threads(2)
        let models = try (0..<2).map { _ in
            try ResNet(arch: .resnet18, width: 8, inputHeight: 64, inputWidth: 20, maxBatch: 4, seed: 3)
        }
        var rng = Xoshiro256(seed: 4)
        let input = Buffer(random: 4 * 64 * 20, rng: &rng), dlogits = Buffer(random: 40, rng: &rng)
        func step(_ model: ResNet) {
            for _ in 0..<3 {
                _ = try! model.forward(input: input.pointer, batch: 4, training: true)
                model.backward(dlogits: dlogits.pointer)
            }
        }
        step(models[0])
        let serial = Array(UnsafeBufferPointer(start: models[0].gradients, count: models[0].parameterCount))
        models[0].zeroGradients()
        DispatchQueue.concurrentPerform(iterations: 2) { step(models[$0]) }
        for model in models {
            XCTAssert(serial.elementsEqual(UnsafeBufferPointer(start: model.gradients, count: model.parameterCount)) {
                $0.bitPattern == $1.bitPattern
            })
        }
    }

    func testTrainingReducesTheLossOnAFixedBatch() throws {
        let batch = 4
        let model = try ResNet(arch: .resnet18, width: 8, inputHeight: 32, inputWidth: 20, maxBatch: batch, seed: 1)
        let optimizer = try AdamW(parameterCount: model.parameterCount, weightDecay: 0)
        var rng = Xoshiro256(seed: 2)
        let input = Buffer(random: batch * 32 * 20, rng: &rng)
        let labels = [3, 1, 4, 1]
        let dlogits = Buffer(batch * 10)
        var losses: [Float] = []
        for _ in 0..<15 {
            let logits = try model.forward(input: input.pointer, batch: batch, training: true)
            losses.append(try Loss.softmaxCrossEntropy(logits: logits, labels: labels, batch: batch, classes: 10,
                                                      dlogits: dlogits.pointer))
            model.backward(dlogits: dlogits.pointer)
            try optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: 3e-3)
            model.zeroGradients()
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.2, "losses \(losses)")
    }

    func testGradientsAccumulateUntilZeroed() throws {
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 20, maxBatch: 2, seed: 1)
        var rng = Xoshiro256(seed: 2)
        let input = Buffer(random: 2 * 32 * 20, rng: &rng), dlogits = Buffer(random: 20, rng: &rng)
        _ = try model.forward(input: input.pointer, batch: 2, training: true)
        model.backward(dlogits: dlogits.pointer)
        let once = Array(UnsafeBufferPointer(start: model.gradients, count: model.parameterCount))
        _ = try model.forward(input: input.pointer, batch: 2, training: true)
        model.backward(dlogits: dlogits.pointer)
        for i in stride(from: 0, to: model.parameterCount, by: 97) {
            XCTAssertEqual(model.gradients[i], 2 * once[i], accuracy: 1e-5 + 1e-4 * abs(once[i]))
        }
        model.zeroGradients()
        XCTAssert((0..<model.parameterCount).allSatisfy { model.gradients[$0] == 0 })
    }

    func testEvalModeIsPerSampleAndDoesNotTouchRunningStatistics() throws {
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 20, maxBatch: 3, dropout: 0.5, seed: 1)
        var rng = Xoshiro256(seed: 2)
        let input = Buffer(random: 3 * 32 * 20, rng: &rng)
        _ = try model.forward(input: input.pointer, batch: 3, training: true)  // move the running statistics
        let statistics = Array(UnsafeBufferPointer(start: model.buffers, count: model.bufferCount))
        let batched = Array(UnsafeBufferPointer(start: try model.forward(input: input.pointer, batch: 3, training: false), count: 30))
        let single = Array(UnsafeBufferPointer(start: try model.forward(input: input.pointer + 640, batch: 1, training: false), count: 10))
        for k in 0..<10 { XCTAssertEqual(single[k], batched[10 + k], accuracy: 1e-5) }
        XCTAssertEqual(statistics, Array(UnsafeBufferPointer(start: model.buffers, count: model.bufferCount)))
    }

    func testBadConfigurationThrowsOneLineErrors() throws {
        XCTAssertEqual(try Architecture(parsing: "resnet50"), .resnet50)
        XCTAssertThrowsError(try Architecture(parsing: "resnet101")) { error in
            XCTAssertEqual("\(error)", "unknown architecture 'resnet101': expected one of resnet18, resnet34, resnet50")
        }
        XCTAssertThrowsError(try ResNet(arch: .resnet18, width: 0, inputHeight: 32, inputWidth: 20, maxBatch: 2, seed: 0)) {
            XCTAssertEqual("\($0)", "invalid width 0: must be a positive channel count")
        }
        XCTAssertThrowsError(try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 20, maxBatch: 0, seed: 0)) {
            XCTAssertEqual("\($0)", "invalid maximum batch size 0: must be at least 1")
        }
        XCTAssertThrowsError(try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 20, maxBatch: 1, dropout: 1, seed: 0))
        XCTAssertThrowsError(try ResNet(arch: .resnet18, width: 4, inputHeight: 0, inputWidth: 20, maxBatch: 1, seed: 0)) {
            XCTAssertEqual("\($0)", "invalid input size 0x20: must be positive")
        }
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 20, maxBatch: 2, seed: 0)
        let input = Buffer(3 * 32 * 20)
        for batch in [0, -1, 3] {
            XCTAssertThrowsError(try model.forward(input: input.pointer, batch: batch, training: true)) {
                XCTAssertEqual("\($0)", "invalid batch size \(batch): must be in 1...2")
            }
        }
    }

    func testTinyInputsStillProduceLogits() throws {
        // Padded strides round up, so even a 1×3 input reaches layer4 as a 1×1 map.
        let model = try ResNet(arch: .resnet34, width: 2, inputHeight: 1, inputWidth: 3, maxBatch: 1, seed: 0)
        let input = Buffer(3, value: 1)
        let logits = try model.forward(input: input.pointer, batch: 1, training: false)
        XCTAssert((0..<10).allSatisfy { logits[$0].isFinite })
    }

    func testMultiChannelInputIsReadAsNCHW() throws {
        // Two channels, the second all zero: identical to a model whose conv1 only sees channel 0 — checked by
        // zeroing the conv1 weights of channel 1 instead and swapping the data between channels.
        let model = try ResNet(arch: .resnet18, width: 4, inputChannels: 2, inputHeight: 16, inputWidth: 16, maxBatch: 2, seed: 0)
        let conv1 = model.parameterSlots[0]
        for o in 0..<4 { for i in 0..<49 { model.parameters[conv1.offset + (o * 2 + 1) * 49 + i] = 0 } }
        var rng = Xoshiro256(seed: 1)
        let input = Buffer(random: 2 * 2 * 256, rng: &rng)  // [B=2][C=2][16][16]
        let reference = Array(UnsafeBufferPointer(start: try model.forward(input: input.pointer, batch: 2, training: false), count: 20))
        for b in 0..<2 { for i in 0..<256 { input[(b * 2 + 1) * 256 + i] = 1000 } }  // channel 1 is ignored
        let changed = Array(UnsafeBufferPointer(start: try model.forward(input: input.pointer, batch: 2, training: false), count: 20))
        XCTAssertEqual(reference, changed)
        for i in 0..<256 { input[i] = 0 }  // sample 0, channel 0 does matter
        let sampleZeroChanged = Array(UnsafeBufferPointer(start: try model.forward(input: input.pointer, batch: 2, training: false), count: 20))
        XCTAssertNotEqual(Array(reference.prefix(10)), Array(sampleZeroChanged.prefix(10)))
        XCTAssertEqual(Array(reference.suffix(10)), Array(sampleZeroChanged.suffix(10)))
    }
}
