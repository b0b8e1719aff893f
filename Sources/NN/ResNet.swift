/// The ResNet depths we build, named as in configuration files.
public enum Architecture: String, CaseIterable, Sendable {
    case resnet18, resnet34, resnet50

    /// Parses a configuration value such as "resnet50"; anything else is a one-line error.
    public init(parsing name: String) throws {
        guard let architecture = Architecture(rawValue: name) else { throw NNError.unknownArchitecture(name) }
        self = architecture
    }

    /// Residual blocks in layer1…layer4 (torchvision's `layers`).
    var blocksPerStage: [Int] {
        switch self {
        case .resnet18: return [2, 2, 2, 2]
        case .resnet34, .resnet50: return [3, 4, 6, 3]
        }
    }

    var usesBottleneck: Bool { self == .resnet50 }
}

/// Convolution → BatchNorm → optional ReLU (fused into the BatchNorm), the unit every part of a ResNet is
/// made of. The convolution's output is kept because BatchNorm's backward needs it.
final class ConvBatchNorm {
    let conv: Conv2d
    let norm: BatchNorm2d
    let convOutput: Activation  // [Cout][B][Ho][Wo] before normalisation
    let output: Activation  // [Cout][B][Ho][Wo] after normalisation (and ReLU)
    private let context: NetworkContext

    init(_ context: NetworkContext, name: String, convName: String, normName: String, inChannels: Int, outChannels: Int,
         kernel: Int, stride: Int, padding: Int, inputHeight: Int, inputWidth: Int, maxBatch: Int,
         appliesReLU: Bool, subSpectralBands: Int) throws {
        conv = try Conv2d(context, name: name + convName, inChannels: inChannels, outChannels: outChannels,
                          kernel: kernel, stride: stride, padding: padding, inputHeight: inputHeight,
                          inputWidth: inputWidth, maxBatch: maxBatch)
        norm = BatchNorm2d(context, name: name + normName, channels: outChannels, height: conv.outputHeight,
                           width: conv.outputWidth, rectifies: appliesReLU, subBands: subSpectralBands)
        self.context = context
        convOutput = Activation(channels: outChannels, height: conv.outputHeight, width: conv.outputWidth,
                                maxBatch: maxBatch)
        output = Activation(channels: outChannels, height: conv.outputHeight, width: conv.outputWidth,
                            maxBatch: maxBatch)
    }

    func initialize(_ rng: inout Xoshiro256) {
        conv.initialize(&rng)
        norm.initialize()
    }

    /// input [Cin][B][H][W] → output.value [Cout][B][Ho][Wo]
    func forward(input: UnsafePointer<Float>, batch: Int, training: Bool) {
        conv.forward(input: input, output: convOutput.value, batch: batch)
        context.timed(.batchNorm) {
            norm.forward(input: convOutput.value, output: output.value, batch: batch, training: training)
        }
    }

    /// doutput [Cout][B][Ho][Wo] (rectified in place when this unit has a ReLU) → dinput [Cin][B][H][W],
    /// overwritten or, with `accumulate`, added to; no input gradient when `dinput` is nil.
    func backward(input: UnsafePointer<Float>, doutput: UnsafeMutablePointer<Float>,
                  dinput: UnsafeMutablePointer<Float>?, accumulate: Bool, batch: Int) {
        context.timed(.batchNorm) {
            norm.backward(input: convOutput.value, output: output.value, doutput: doutput, dinput: convOutput.grad,
                          batch: batch)
        }
        conv.backward(input: input, doutput: convOutput.grad, dinput: dinput, accumulate: accumulate, batch: batch)
    }
}

/// A torchvision residual block: the main path of ConvBatchNorm units (Basic: 3×3, 3×3; Bottleneck: 1×1,
/// 3×3, 1×1 with expansion 4, stride on the 3×3 as in torchvision v1.5), plus the input or a 1×1
/// projection when the shape changes, then ReLU. Parameters are registered in torchvision's order
/// (main path, then `downsample`), so backward, which finishes the projection first, hands out gradient
/// ranges in strictly decreasing order.
final class ResidualBlock {
    let mainPath: [ConvBatchNorm]
    let projection: ConvBatchNorm?
    private let context: NetworkContext

    var output: Activation { mainPath[mainPath.count - 1].output }

    init(_ context: NetworkContext, name: String, bottleneck: Bool, inChannels: Int, planes: Int, stride: Int,
         inputHeight: Int, inputWidth: Int, maxBatch: Int, subSpectralBands: Int) throws {
        self.context = context
        // (output channels, kernel, stride) of each main-path unit.
        let shapes = bottleneck
            ? [(planes, 1, 1), (planes, 3, stride), (planes * 4, 1, 1)]
            : [(planes, 3, stride), (planes, 3, 1)]
        var units: [ConvBatchNorm] = []
        var channels = inChannels, height = inputHeight, width = inputWidth
        for (index, (outChannels, kernel, unitStride)) in shapes.enumerated() {
            let unit = try ConvBatchNorm(context, name: name, convName: ".conv\(index + 1)", normName: ".bn\(index + 1)",
                                         inChannels: channels, outChannels: outChannels, kernel: kernel,
                                         stride: unitStride, padding: kernel / 2, inputHeight: height,
                                         inputWidth: width, maxBatch: maxBatch, appliesReLU: index < shapes.count - 1,
                                         subSpectralBands: subSpectralBands)
            units.append(unit)
            (channels, height, width) = (outChannels, unit.conv.outputHeight, unit.conv.outputWidth)
        }
        mainPath = units
        projection = stride != 1 || inChannels != channels
            ? try ConvBatchNorm(context, name: name, convName: ".downsample.0", normName: ".downsample.1",
                                inChannels: inChannels, outChannels: channels, kernel: 1, stride: stride, padding: 0,
                                inputHeight: inputHeight, inputWidth: inputWidth, maxBatch: maxBatch,
                                appliesReLU: false, subSpectralBands: subSpectralBands)
            : nil
    }

    func initialize(_ rng: inout Xoshiro256) {
        for unit in mainPath { unit.initialize(&rng) }
        projection?.initialize(&rng)
    }

    /// input [Cin][B][H][W] → output.value [Cout][B][Ho][Wo] = relu(main(input) + shortcut(input))
    func forward(input: Activation, batch: Int, training: Bool) {
        var x = UnsafePointer(input.value)
        for unit in mainPath {
            unit.forward(input: x, batch: batch, training: training)
            x = UnsafePointer(unit.output.value)
        }
        var shortcut = input.value
        if let projection {
            projection.forward(input: input.value, batch: batch, training: training)
            shortcut = projection.output.value
        }
        let out = output.value, count = output.count(batch: batch)
        context.timed(.residual) {
            parallelChunks(count, minimumChunk: 4096, (out, UnsafePointer(shortcut))) { job, lower, upper in
                let (out, shortcut) = job.load(as: (UnsafeMutablePointer<Float>, UnsafePointer<Float>).self)
                for i in lower..<upper { out[i] = ReLU.apply(out[i] + shortcut[i]) }
            }
        }
    }

    /// output.grad → input.grad (overwritten): the shortcut's gradient plus the main path's.
    func backward(input: Activation, batch: Int) {
        let dout = output.grad
        context.timed(.residual) { ReLU.backward(output: output.value, grad: dout, count: output.count(batch: batch)) }
        if let projection {
            projection.backward(input: input.value, doutput: dout, dinput: input.grad, accumulate: false, batch: batch)
        } else {
            input.grad.update(from: dout, count: input.count(batch: batch))
        }
        for index in stride(from: mainPath.count - 1, through: 0, by: -1) {
            let unit = mainPath[index]
            let previous = index > 0 ? mainPath[index - 1].output : input
            unit.backward(input: previous.value, doutput: unit.output.grad, dinput: previous.grad,
                          accumulate: index == 0, batch: batch)
        }
    }
}

/// torchvision's ResNet for `inputChannels`-channel spectrograms: conv1 7×7/2 → bn → relu → maxpool 3×3/2
/// → layer1…layer4 (width·{1, 2, 4, 8} channels, ×4 for bottlenecks) → global average pool →
/// optional dropout → fc. Parameter names, order and initialisation follow torchvision, so a
/// state_dict maps one to one onto `parameterSlots` / `bufferSlots`. With `subSpectralBands` S > 1 every
/// BatchNorm is SubSpectral Normalization over S mel bands (its arrays [C·S] instead of [C]).
///
/// Every activation is allocated once for `maxBatch` at init; a training step allocates nothing
/// (scripts/count-step-allocations.sh measures it). Gradients ACCUMULATE: backward adds to `gradients`,
/// so several micro-batches can be summed for gradient accumulation; call `zeroGradients()` after each
/// optimizer update. Threads: forward, backward and AdamW use as many threads as OpenBLAS is set to
/// (openblas_set_num_threads), through the engine's own pool (see `withComputeThreads`); results are
/// bitwise the same for any thread count.
public final class ResNet {
    public let architecture: Architecture
    public let width, inputChannels, inputHeight, inputWidth, maxBatch, classes, subSpectralBands: Int
    public let dropout: Float

    private let context = NetworkContext()
    private let input: Activation  // [Cin][B][H][W]: the caller's NCHW batch in the channel-major layout
    private let stem: ConvBatchNorm
    private let maxPool: MaxPool2d
    private let pooled: Activation  // maxPool's output
    private let blocks: [ResidualBlock]
    private let features: Activation  // [C][B] after global average pooling (and dropout, in place)
    private let dropoutLayer: Dropout?
    private let fc: Linear
    private let logits: UnsafeMutablePointer<Float>  // [B][classes]
    private var lastBatch = 0

    public init(arch: Architecture, width: Int = 64, inputChannels: Int = 1, inputHeight: Int, inputWidth: Int,
                maxBatch: Int, classes: Int = 10, dropout: Float = 0, subSpectralBands: Int = 1, seed: UInt64) throws {
        try require(width >= 1, "width", width, "must be a positive channel count")
        try require(inputChannels >= 1, "input channel count", inputChannels, "must be at least 1")
        try require(inputHeight >= 1 && inputWidth >= 1, "input size", "\(inputHeight)x\(inputWidth)", "must be positive")
        try require(maxBatch >= 1, "maximum batch size", maxBatch, "must be at least 1")
        try require(classes >= 1, "class count", classes, "must be at least 1")
        try require(dropout >= 0 && dropout < 1, "dropout probability", dropout, "must be in [0, 1)")
        try require(subSpectralBands >= 1, "sub-spectral band count", subSpectralBands, "must be at least 1")
        architecture = arch
        self.width = width
        self.inputChannels = inputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.maxBatch = maxBatch
        self.classes = classes
        self.dropout = dropout
        self.subSpectralBands = subSpectralBands

        input = Activation(channels: inputChannels, height: inputHeight, width: inputWidth, maxBatch: maxBatch)
        stem = try ConvBatchNorm(context, name: "", convName: "conv1", normName: "bn1", inChannels: inputChannels,
                                 outChannels: width, kernel: 7, stride: 2, padding: 3, inputHeight: inputHeight,
                                 inputWidth: inputWidth, maxBatch: maxBatch, appliesReLU: true,
                                 subSpectralBands: subSpectralBands)
        maxPool = try MaxPool2d(channels: width, height: stem.conv.outputHeight, width: stem.conv.outputWidth,
                                kernel: 3, stride: 2, padding: 1, maxBatch: maxBatch)
        pooled = Activation(channels: width, height: maxPool.outputHeight, width: maxPool.outputWidth, maxBatch: maxBatch)

        var blocks: [ResidualBlock] = []
        var channels = width, height = pooled.height, columns = pooled.width
        for (stage, count) in arch.blocksPerStage.enumerated() {
            let planes = width << stage
            for index in 0..<count {
                let block = try ResidualBlock(context, name: "layer\(stage + 1).\(index)", bottleneck: arch.usesBottleneck,
                                              inChannels: channels, planes: planes,
                                              stride: stage > 0 && index == 0 ? 2 : 1, inputHeight: height,
                                              inputWidth: columns, maxBatch: maxBatch, subSpectralBands: subSpectralBands)
                blocks.append(block)
                (channels, height, columns) = (block.output.channels, block.output.height, block.output.width)
            }
        }
        self.blocks = blocks
        features = Activation(channels: channels, height: 1, width: 1, maxBatch: maxBatch)
        dropoutLayer = dropout > 0
            ? Dropout(probability: dropout, capacity: channels * maxBatch, seed: seed ^ 0xD209_0F70_D209_0F70)
            : nil
        fc = Linear(context, name: "fc", inFeatures: channels, outFeatures: classes)
        logits = .allocate(capacity: maxBatch * classes)
        logits.initialize(repeating: 0, count: maxBatch * classes)

        context.allocate()
        var rng = Xoshiro256(seed: seed)
        stem.initialize(&rng)
        for block in blocks { block.initialize(&rng) }
        fc.initialize(&rng)
    }

    deinit { logits.deallocate() }

    // MARK: Flat buffers

    /// All trainable parameters, one contiguous block in torchvision's state_dict order.
    public var parameters: UnsafeMutablePointer<Float> { context.parameters }
    /// Gradients with exactly the layout of `parameters`.
    public var gradients: UnsafeMutablePointer<Float> { context.gradients }
    /// BatchNorm running means and variances (checkpointed, not trained).
    public var buffers: UnsafeMutablePointer<Float> { context.buffers }
    public var parameterCount: Int { context.parameterCount }
    public var bufferCount: Int { context.bufferCount }
    /// Name, shape, offset and count of every parameter tensor in `parameters` / `gradients`.
    public var parameterSlots: [TensorSlot] { context.parameterSlots }
    /// Name, shape, offset and count of every tensor in `buffers`.
    public var bufferSlots: [TensorSlot] { context.bufferSlots }

    /// The arithmetic of the convolutions and the linear layer, forward and backward (Float32 by default);
    /// bf16 only where `Precision.bf16Available`. It may change between steps.
    public var precision: Precision {
        get { context.precision }
        set {
            precondition(newValue == .fp32 || Precision.bf16Available, "bf16 needs AVX512_BF16")
            context.precision = newValue
        }
    }

    /// Called during backward as soon as a layer's parameter gradients are final, with that layer's range
    /// in `gradients`. Ranges come in strictly decreasing order and together tile the whole buffer, so a
    /// data-parallel trainer can start all-reducing the tail of the buffer while backward continues.
    public var gradientsReady: ((Range<Int>) -> Void)? {
        get { context.gradientsReady }
        set { context.gradientsReady = newValue }
    }

    /// Synchronised BatchNorm: an in-place sum over ranks of `count` Doubles. Each BatchNorm layer calls it
    /// once in forward (per-channel Σx, Σx², element count; per channel and band with sub-spectral bands) and
    /// once in backward (Σdy, Σdy·x̂, count).
    /// Nil (the default) normalises with this process's batch only.
    public var batchNormReduce: ((UnsafeMutablePointer<Double>, Int) -> Void)? {
        get { context.batchNormReduce }
        set { context.batchNormReduce = newValue }
    }

    public func zeroGradients() { context.gradients.update(repeating: 0, count: context.parameterCount) }

    /// Multiply-adds ×2 of the convolutions and fc for one sample's forward pass; backward costs twice that.
    /// Counted as direct convolutions, the usual measure of a network's work (see `executedFlopsPerSample`).
    public var forwardFlopsPerSample: Int { convolutions.reduce(fc.forwardFlopsPerSample) { $0 + $1.forwardFlopsPerSample } }

    /// The same for the multiply-adds the engine really runs: fewer for the Winograd convolutions.
    public var executedFlopsPerSample: Int { convolutions.reduce(fc.forwardFlopsPerSample) { $0 + $1.executedFlopsPerSample } }

    private var convolutions: [Conv2d] { units.map(\.conv) }

    /// Every convolution + BatchNorm unit, in network order.
    private var units: [ConvBatchNorm] { [stem] + blocks.flatMap { $0.mainPath + ($0.projection.map { [$0] } ?? []) } }

    // MARK: Training step

    /// input [B][Cin][H][W] (NCHW) → logits [B][classes], valid until the next forward.
    public func forward(input source: UnsafePointer<Float>, batch: Int, training: Bool) throws -> UnsafePointer<Float> {
        try require((1...maxBatch).contains(batch), "batch size", batch, "must be in 1...\(maxBatch)")
        return withComputeThreads { forwardPass(input: source, batch: batch, training: training) }
    }

    private func forwardPass(input source: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafePointer<Float> {
        lastBatch = batch
        let plane = inputHeight * inputWidth
        for b in 0..<batch {
            for c in 0..<inputChannels {
                (input.value + (c * batch + b) * plane).update(from: source + (b * inputChannels + c) * plane, count: plane)
            }
        }
        stem.forward(input: input.value, batch: batch, training: training)
        context.timed(.pooling) { maxPool.forward(input: stem.output.value, output: pooled.value, batch: batch) }
        var x = pooled
        for block in blocks {
            block.forward(input: x, batch: batch, training: training)
            x = block.output
        }
        let last = x
        context.timed(.pooling) {
            GlobalAveragePool.forward(input: last.value, output: features.value, planes: last.channels * batch,
                                      spatial: last.height * last.width)
        }
        if let dropoutLayer {
            context.timed(.dropout) { dropoutLayer.forward(features.value, count: features.count(batch: batch), training: training) }
        }
        context.timed(.linear) { fc.forward(input: features.value, output: logits, batch: batch) }
        return UnsafePointer(logits)
    }

    /// dlogits [B][classes] of the last forward → gradients += ∂loss/∂parameters.
    public func backward(dlogits: UnsafePointer<Float>) {
        withComputeThreads { backwardPass(dlogits: dlogits) }
    }

    private func backwardPass(dlogits: UnsafePointer<Float>) {
        let batch = lastBatch
        context.timed(.linear) { fc.backward(input: features.value, doutput: dlogits, dinput: features.grad, batch: batch) }
        if let dropoutLayer {
            context.timed(.dropout) { dropoutLayer.backward(features.grad, count: features.count(batch: batch)) }
        }
        let last = blocks[blocks.count - 1].output
        context.timed(.pooling) {
            GlobalAveragePool.backward(doutput: features.grad, dinput: last.grad, planes: last.channels * batch,
                                       spatial: last.height * last.width)
        }
        for index in stride(from: blocks.count - 1, through: 0, by: -1) {
            blocks[index].backward(input: index > 0 ? blocks[index - 1].output : pooled, batch: batch)
        }
        context.timed(.pooling) { maxPool.backward(doutput: pooled.grad, dinput: stem.output.grad, batch: batch) }
        stem.backward(input: input.value, doutput: stem.output.grad, dinput: nil, accumulate: false, batch: batch)
    }

    /// Re-estimates every BatchNorm's running statistics as their plain average over the training-mode
    /// forwards `body` runs (AdaBN, Li et al. 2016: a trained network's normalisation re-fitted, without
    /// labels, to the data it is about to classify). Weights are not touched.
    public func reestimateBatchNormStatistics(_ body: () throws -> Void) rethrows {
        let norms = units.map(\.norm)
        for norm in norms { norm.startCumulativeStatistics() }
        defer { for norm in norms { norm.stopCumulativeStatistics() } }
        try body()
    }

    /// Each BatchNorm's scales and shifts in `parameters`, in network order: what test-time adaptation moves.
    public var batchNormParameterRanges: [Range<Int>] { units.map(\.norm.parameterRange) }

    /// For every BatchNorm with sub-spectral bands (torchvision name, "layer1.0.bn1"), the band of each of
    /// its mel rows: where its [C·S] arrays apply, for exporters that cannot fold it into the convolution.
    public var subSpectralBandOfRow: [String: [Int]] {
        let norms = units.map(\.norm)
        return Dictionary(uniqueKeysWithValues: norms.filter { $0.subBands > 1 }.map {
            (String($0.weight.name.dropLast(".weight".count)), $0.bandOfEachRow)
        })
    }

    /// The ε of every BatchNorm's variance, for exporters that fold them into the convolutions.
    public static var batchNormEpsilon: Double { BatchNorm2d.epsilon }

    // MARK: Profiling

    /// Starts (or restarts) charging time to each `LayerKind`; see `profile`.
    public func enableProfiling() { context.enableProfiling() }

    /// Seconds spent per layer kind since `enableProfiling()`; empty when profiling is off.
    public var profile: [LayerKind: Double] {
        guard let seconds = context.profile else { return [:] }
        return Dictionary(uniqueKeysWithValues: LayerKind.allCases.map { ($0, seconds[$0.rawValue]) })
    }

    /// Seconds per convolution (torchvision's names, network order), forward and backward, since
    /// `enableProfiling()`; empty when profiling is off.
    public var convolutionProfile: [(name: String, forward: Double, backward: Double)] {
        guard let seconds = context.convolutionProfile else { return [] }
        return context.convolutionNames.enumerated().map { ($1, seconds[2 * $0], seconds[2 * $0 + 1]) }
    }

    /// Charges `body` to `kind` in the profile (for the loss and optimizer, which live outside the model).
    public func timed<T>(_ kind: LayerKind, _ body: () throws -> T) rethrows -> T { try context.timed(kind, body) }
}
