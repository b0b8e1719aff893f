import Foundation
import NN
@testable import Train
import XCTest

final class PretrainedWeightsTests: XCTestCase {
    /// A safetensors file laid out like torchvision's state_dict: RGB stem, ImageNet classifier, one F16 tensor.
    func writeTorchvisionLike(for model: ResNet, to path: String) throws -> [String: [Float]] {
        var tensors: [(String, [Int], [Float], String)] = []
        var rng = Xoshiro256(seed: 42)
        for slot in model.parameterSlots + model.bufferSlots where !slot.name.hasPrefix("fc.") {
            var shape = slot.shape
            if slot.name == "conv1.weight" { shape[1] = 3 }
            let values = (0..<shape.reduce(1, *)).map { _ in Float(rng.nextGaussian()).rounded(toPlaces: 2) }
            tensors.append((slot.name, shape, values, slot.name == "bn1.running_mean" ? "F16" : "F32"))
        }
        tensors.append(("fc.weight", [1000, model.parameterSlots.last { $0.name == "fc.weight" }!.shape[1]], [], "F32"))
        tensors.append(("bn1.num_batches_tracked", [], [7], "F32"))
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var payload = Data()
        for (name, shape, values, dtype) in tensors {
            let count = shape.reduce(1, *)
            let filled = values.isEmpty ? [Float](repeating: 0.5, count: count) : values
            let begin = payload.count
            for value in filled {
                if dtype == "F16" {
                    withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { payload.append(contentsOf: $0) }
                } else {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { payload.append(contentsOf: $0) }
                }
            }
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [begin, payload.count]]
        }
        let json = try JSONSerialization.data(withJSONObject: header)
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(payload)
        try file.write(to: URL(fileURLWithPath: path))
        return Dictionary(uniqueKeysWithValues: tensors.map { ($0.0, $0.2) })
    }

    func temporaryPath() -> String {
        let path = FileManager.default.temporaryDirectory.path + "/pretrained-\(UUID().uuidString).safetensors"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testTensorsAreCopiedTheStemIsSummedAndTheClassifierKept() throws {
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 16, maxBatch: 2, seed: 3)
        let path = temporaryPath()
        let written = try writeTorchvisionLike(for: model, to: path)
        let fcBefore = Array(UnsafeBufferPointer(start: model.parameters + model.parameterSlots.first { $0.name == "fc.weight" }!.offset,
                                                 count: 40))
        let report = try PretrainedWeights.load(path: path, into: model)
        XCTAssertEqual(report.summedToOneChannel, ["conv1.weight"])
        XCTAssertEqual(report.replaced, ["fc.weight", "fc.bias"])
        XCTAssertEqual(report.loaded, model.parameterSlots.count - 2 + model.bufferSlots.count)
        for slot in model.parameterSlots + model.bufferSlots where !slot.name.hasPrefix("fc.") {
            let storage = model.parameterSlots.contains(slot) ? model.parameters : model.buffers
            let loaded = Array(UnsafeBufferPointer(start: storage + slot.offset, count: slot.count))
            let source = written[slot.name]!
            if slot.name == "conv1.weight" {
                let plane = 49
                let expected = (0..<slot.count).map { j in (0..<3).reduce(Float(0)) { $0 + source[((j / plane) * 3 + $1) * plane + j % plane] } }
                XCTAssertEqual(loaded, expected, slot.name)
            } else if slot.name == "bn1.running_mean" {
                XCTAssertEqual(loaded, source.map { Float(Float16($0)) }, slot.name)
            } else {
                XCTAssertEqual(loaded, source, slot.name)
            }
        }
        let fcAfter = Array(UnsafeBufferPointer(start: model.parameters + model.parameterSlots.first { $0.name == "fc.weight" }!.offset, count: 40))
        XCTAssertEqual(fcAfter, fcBefore, "the 10-digit classifier keeps its own initialisation")
    }

    /// Into a SubSpectral model each band of a BatchNorm starts as its channel's (layer4's one row is one band).
    func testSubSpectralBandsEachStartAsTheirChannelsBatchNorm() throws {
        let plain = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 16, maxBatch: 2, seed: 3)
        let path = temporaryPath()
        let written = try writeTorchvisionLike(for: plain, to: path)
        let banded = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 16, maxBatch: 2, subSpectralBands: 2, seed: 3)
        let report = try PretrainedWeights.load(path: path, into: banded)
        XCTAssertEqual(report.loaded, banded.parameterSlots.count - 2 + banded.bufferSlots.count)
        var bandedCount = 0
        for slot in banded.parameterSlots + banded.bufferSlots where slot.shape.count == 1 && !slot.name.hasPrefix("fc.") {
            let storage = banded.parameterSlots.contains(slot) ? banded.parameters : banded.buffers
            let loaded = Array(UnsafeBufferPointer(start: storage + slot.offset, count: slot.count))
            let source = written[slot.name]!.map { slot.name == "bn1.running_mean" ? Float(Float16($0)) : $0 }
            let bands = slot.count / source.count
            XCTAssertEqual(bands, slot.name.hasPrefix("layer4.") ? 1 : 2, slot.name)
            XCTAssertEqual(loaded, (0..<slot.count).map { source[$0 / bands] }, slot.name)
            bandedCount += bands == 2 ? 1 : 0
        }
        XCTAssertGreaterThan(bandedCount, 20)
    }

    func testMismatchesNameTheTensorAndTheFile() throws {
        let narrow = try ResNet(arch: .resnet18, width: 4, inputHeight: 32, inputWidth: 16, maxBatch: 2, seed: 3)
        let path = temporaryPath()
        _ = try writeTorchvisionLike(for: narrow, to: path)
        let wide = try ResNet(arch: .resnet18, width: 8, inputHeight: 32, inputWidth: 16, maxBatch: 2, seed: 3)
        XCTAssertThrowsError(try PretrainedWeights.load(path: path, into: wide)) {
            XCTAssertEqual("\($0)", "\(path): tensor conv1.weight has shape [4, 3, 7, 7], this model's is [8, 1, 7, 7] "
                + "(architecture.width must be 64 for torchvision weights)")
        }
        let deeper = try ResNet(arch: .resnet34, width: 4, inputHeight: 32, inputWidth: 16, maxBatch: 2, seed: 3)
        XCTAssertThrowsError(try PretrainedWeights.load(path: path, into: deeper)) {
            XCTAssertTrue("\($0)".contains("has no tensor layer1.2.conv1.weight"), "\($0)")
        }
        try Data("not safetensors".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PretrainedWeights.load(path: path, into: narrow)) {
            XCTAssertTrue("\($0)".hasPrefix(path + ": not a safetensors file"), "\($0)")
        }
        // A header of the right length that is not JSON, and one whose tensor lacks its fields.
        for (header, problem) in [("{\"conv1.weight\": [", "not a safetensors file (its header is not JSON)"),
                                  ("{\"__metadata__\": {\"format\": \"pt\"}, \"conv1.weight\": {\"shape\": [1]}}",
                                   "tensor conv1.weight has no dtype, shape and data_offsets"),
                                  ("{\"conv1.weight\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}",
                                   "tensor conv1.weight has no dtype, shape and data_offsets")] {
            var length = UInt64(header.utf8.count).littleEndian
            try (Data(bytes: &length, count: 8) + Data(header.utf8)).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try PretrainedWeights.load(path: path, into: narrow)) {
                XCTAssertEqual("\($0)", "\(path): \(problem)")
            }
        }
    }
}

extension Float {
    func rounded(toPlaces places: Int) -> Float {
        let scale = Float(pow(10.0, Double(places)))
        return (self * scale).rounded() / scale
    }
}
