import Foundation
import NN
import Train

/// A trained ResNet in eval mode as an ONNX graph (opset 13) that onnxruntime runs:
///   features [N, 1, H, W] → Conv(conv1 ⊙ bn1) → Relu → MaxPool 3×3/2 → residual blocks → GlobalAveragePool
///   → Flatten → Gemm(fc, transB) → logits [N, classes] → Softmax(axis 1) → probabilities [N, classes].
/// Every BatchNorm is folded into the convolution before it, which then gets a bias:
///   W' = W·γ/√(var + ε),  b' = β − mean·γ/√(var + ε),  computed in Double and stored as Float.
/// A SubSpectral one (`architecture.subspectral_bands`), whose scale changes along the mel rows, cannot be
/// folded into a convolution: it becomes Mul and Add by [1, C, rows, 1] tensors after it.
/// Dropout is the identity in eval mode and has no node. The graph is read off the model's tensor slots
/// (torchvision names), and every slot must end up in it, so a layout change cannot export silently wrong.
public enum ONNXExport {
    public static let opsetVersion = 13
    /// IR version 7 is the one released with opset 13.
    public static let irVersion = 7

    /// The ONNX model of `trained`, with input "features" [N, 1, inputHeight, inputWidth] for any batch N.
    public static func model(from trained: TrainedModel) throws -> ONNX.ModelProto {
        let model = trained.model
        var builder = GraphBuilder(model: model, path: trained.path)
        let m = trained.metadata
        let input = ONNX.ValueInfoProto(name: "features", shape: [.parameter("N"), .value(model.inputChannels),
                                                                  .value(m.inputHeight), .value(m.inputWidth)])
        builder.graph.input = [input]

        var x = try builder.convBatchNorm(input.name, conv: "conv1", norm: "bn1", stride: 2)
        x = builder.node("Relu", [x], name: "relu")
        x = builder.node("MaxPool", [x], name: "maxpool",
                         [.init("kernel_shape", .ints([3, 3])), .init("strides", .ints([2, 2])), .init("pads", .ints([1, 1, 1, 1]))])
        for block in model.parameterSlots.map(\.name)
        where block.hasPrefix("layer") && block.hasSuffix(".conv1.weight") {
            x = try builder.residualBlock(x, prefix: String(block.dropLast(".conv1.weight".count)))
        }
        x = builder.node("GlobalAveragePool", [x], name: "avgpool")
        x = builder.node("Flatten", [x], name: "flatten", [.init("axis", .int(1))])
        let fcWeight = try builder.initializer("fc.weight"), fcBias = try builder.initializer("fc.bias")
        let logits = builder.node("Gemm", [x, fcWeight, fcBias], name: "logits", [.init("transB", .int(1))])
        let probabilities = builder.node("Softmax", [logits], name: "probabilities", [.init("axis", .int(1))])
        builder.graph.output = [logits, probabilities].map {
            ONNX.ValueInfoProto(name: $0, shape: [.parameter("N"), .value(model.classes)])
        }
        try builder.checkEveryTensorIsUsed()

        return ONNX.ModelProto(
            irVersion: irVersion, producerName: "digits-dist", producerVersion: "1",
            docString: "\(m.architecture) width \(m.width), \(m.classes) classes, eval mode with BatchNorm "
                + (model.subSpectralBands > 1 ? "in \(model.subSpectralBands) mel bands as Mul and Add; " : "folded; ")
                + "input: log-mel dB, \(m.inputHeight) mel bins × \(m.inputWidth) frames at \(m.audio.sampleRate) Hz, "
                + "hop \(m.audio.hopSize)",
            graph: builder.graph, opsetImport: [ONNX.OperatorSetIdProto(version: opsetVersion)])
    }
}

public struct ONNXExportError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "\(path): \(problem)" }
}

/// Appends nodes and initializers to a graph, reading tensors by name from the model's flat buffers.
private struct GraphBuilder {
    var graph = ONNX.GraphProto(name: "digits_dist_resnet")
    private let model: ResNet
    private let path: String
    private let parameterSlots: [String: TensorSlot]
    private let bufferSlots: [String: TensorSlot]
    /// Each banded BatchNorm's band of each row (`ResNet.subSpectralBandOfRow`).
    private let bandOfRow: [String: [Int]]
    private var used: Set<String> = []

    init(model: ResNet, path: String) {
        self.model = model
        self.path = path
        parameterSlots = Dictionary(uniqueKeysWithValues: model.parameterSlots.map { ($0.name, $0) })
        bufferSlots = Dictionary(uniqueKeysWithValues: model.bufferSlots.map { ($0.name, $0) })
        bandOfRow = model.subSpectralBandOfRow
    }

    /// Adds a node whose single output is named `name`, and returns that name.
    mutating func node(_ opType: String, _ inputs: [String], name: String, _ attributes: [ONNX.AttributeProto] = [])
        -> String {
        graph.node.append(ONNX.NodeProto(input: inputs, output: [name], name: name, opType: opType, attribute: attributes))
        return name
    }

    /// The shape and values of parameter (or BatchNorm buffer) `name`; marks it as exported.
    private mutating func tensor(_ name: String, buffer: Bool = false) throws -> (shape: [Int], values: UnsafePointer<Float>) {
        guard let slot = (buffer ? bufferSlots : parameterSlots)[name] else {
            throw ONNXExportError(path: path, problem: "the model has no tensor \(name), which the export expects")
        }
        used.insert(name)
        return (slot.shape, UnsafePointer((buffer ? model.buffers : model.parameters) + slot.offset))
    }

    /// Adds parameter `name` unchanged as an initializer of the same name.
    mutating func initializer(_ name: String) throws -> String {
        let (shape, values) = try tensor(name)
        let count = shape.reduce(1, *)
        graph.initializer.append(ONNX.TensorProto(dims: shape, floatData: Array(UnsafeBufferPointer(start: values, count: count)),
                                                  name: name))
        return name
    }

    /// Conv `conv` ([Cout][Cin][k][k], padding k/2) then BatchNorm `norm`: folded into the convolution, or
    /// with sub-bands applied after it as Mul and Add by [1, Cout, rows, 1].
    mutating func convBatchNorm(_ input: String, conv: String, norm: String, stride: Int) throws -> String {
        let (shape, weight) = try tensor(conv + ".weight")
        let (normShape, gamma) = try tensor(norm + ".weight")
        let beta = try tensor(norm + ".bias").values
        let mean = try tensor(norm + ".running_mean", buffer: true).values
        let variance = try tensor(norm + ".running_var", buffer: true).values
        let outChannels = shape[0], kernel = shape[3], perChannel = shape.dropFirst().reduce(1, *)
        let padding = kernel / 2, subBands = normShape[0] / outChannels
        // Per (channel, band) group g = c·subBands + s: x ↦ x·scale[g] + shift[g].
        let scale = (0..<normShape[0]).map { Double(gamma[$0]) / (Double(variance[$0]) + ResNet.batchNormEpsilon).squareRoot() }
        let shift = (0..<normShape[0]).map { Double(beta[$0]) - Double(mean[$0]) * scale[$0] }
        let attributes: [ONNX.AttributeProto] = [
            .init("kernel_shape", .ints([kernel, kernel])), .init("strides", .ints([stride, stride])),
            .init("pads", .ints([padding, padding, padding, padding])),
        ]
        guard subBands > 1 else {
            let foldedWeight = (0..<outChannels * perChannel).map { Float(Double(weight[$0]) * scale[$0 / perChannel]) }
            graph.initializer.append(ONNX.TensorProto(dims: shape, floatData: foldedWeight, name: conv + ".weight"))
            graph.initializer.append(ONNX.TensorProto(dims: [outChannels], floatData: shift.map(Float.init), name: conv + ".bias"))
            return node("Conv", [input, conv + ".weight", conv + ".bias"], name: norm, attributes)
        }
        guard let bandOfRow = bandOfRow[norm] else {
            throw ONNXExportError(path: path, problem: "\(norm) has \(normShape[0]) values for \(outChannels) channels")
        }
        _ = try initializer(conv + ".weight")
        let convolved = node("Conv", [input, conv + ".weight"], name: conv, attributes)
        let rows = bandOfRow.count
        let perRow: ([Double]) -> [Float] = { values in
            (0..<outChannels).flatMap { c in bandOfRow.map { Float(values[c * subBands + $0]) } }
        }
        graph.initializer.append(ONNX.TensorProto(dims: [1, outChannels, rows, 1], floatData: perRow(scale), name: norm + ".scale"))
        graph.initializer.append(ONNX.TensorProto(dims: [1, outChannels, rows, 1], floatData: perRow(shift), name: norm + ".shift"))
        let scaled = node("Mul", [convolved, norm + ".scale"], name: norm + ".mul")
        return node("Add", [scaled, norm + ".shift"], name: norm)
    }

    /// torchvision's Basic (conv1, conv2) or Bottleneck (conv1, conv2, conv3) block `prefix` ("layer2.0"):
    /// ReLU after every unit but the last, the stride on the first 3×3 convolution, and on the first block
    /// of stages 2–4 only; the shortcut is the input or the `downsample` projection; then add and ReLU.
    mutating func residualBlock(_ input: String, prefix: String) throws -> String {
        let units = (1...3).map { "\(prefix).conv\($0)" }.filter { parameterSlots[$0 + ".weight"] != nil }
        let isFirstOfStage = prefix.hasSuffix(".0") && !prefix.hasPrefix("layer1.")
        let strideUnit = units.count == 3 ? 1 : 0
        var x = input
        for (index, conv) in units.enumerated() {
            x = try convBatchNorm(x, conv: conv, norm: "\(prefix).bn\(index + 1)",
                                  stride: isFirstOfStage && index == strideUnit ? 2 : 1)
            if index < units.count - 1 { x = node("Relu", [x], name: "\(prefix).relu\(index + 1)") }
        }
        var shortcut = input
        if parameterSlots["\(prefix).downsample.0.weight"] != nil {
            shortcut = try convBatchNorm(input, conv: "\(prefix).downsample.0", norm: "\(prefix).downsample.1",
                                         stride: isFirstOfStage ? 2 : 1)
        }
        let sum = node("Add", [x, shortcut], name: "\(prefix).add")
        return node("Relu", [sum], name: "\(prefix).relu")
    }

    func checkEveryTensorIsUsed() throws {
        let missed = (model.parameterSlots + model.bufferSlots).map(\.name).filter { !used.contains($0) }
        guard missed.isEmpty else {
            throw ONNXExportError(path: path, problem: "the export has no place for \(missed.joined(separator: ", "))")
        }
    }
}
