import Audio
import Datasets
import Foundation
import NN
@testable import Export
@testable import Train
import XCTest

/// `digits-dist export` end to end: a checkpoint with random weights and BatchNorm statistics far from
/// the identity (so folding is really exercised) is exported by the real binary, checked with
/// onnx.checker and run in onnxruntime (scripts/onnx-check.py), whose probabilities must equal our own
/// eval-mode forward's within 1e-4.
final class ONNXExportTests: XCTestCase {
    let melBins = 128, frames = 44
    var root = ""

    override func setUpWithError() throws {
        root = try temporaryFolder("onnx")
    }

    func requireONNXRuntime() throws {
        let probe = try runProcess(["python3", "-c", "import onnxruntime, onnx"], timeout: 120)
        try XCTSkipUnless(probe.status == 0, "python3 cannot import onnxruntime and onnx (pip install onnx onnxruntime)")
    }

    /// Log-mel features [count][1][128][44] of one-second synthetic clips (a harmonic tone under a swell,
    /// plus noise), computed by the real pipeline so the values have a real clip's range.
    func features(count: Int) throws -> [Float] {
        let settings = AudioSettings()
        let extractor = LogMelExtractor(settings: settings)
        var rng = SplitMix64(seed: 42)
        var all: [Float] = []
        for clip in 0..<count {
            let f0 = 150 + 90 * Float(clip)
            let samples = (0..<settings.sampleRate).map { n -> Float in
                let t = Float(n) / Float(settings.sampleRate)
                let tone = (1...4).reduce(Float(0)) { $0 + sin(2 * .pi * f0 * Float($1) * t) / Float($1) }
                return 0.3 * sin(.pi * t) * tone + 0.01 * (2 * rng.nextFloat() - 1)
            }
            let values = extractor.logMel(samples)
            XCTAssertEqual(values.count, melBins * frames, "a one-second clip has \(frames) frames")
            all += values
        }
        return all
    }

    /// A checkpoint of `arch` with random BatchNorm γ ∈ [0.5, 1.5], β ∈ [−0.5, 0.5], and running
    /// statistics from 30 training-mode passes over `features` (means and variances of dB-scale data,
    /// nowhere near 0 and 1).
    func writeCheckpoint(_ arch: Architecture, width: Int, subSpectralBands: Int = 1, features: [Float], fold: Int? = nil,
                         to path: String) throws {
        let batch = features.count / (melBins * frames)
        let model = try ResNet(arch: arch, width: width, inputHeight: melBins, inputWidth: frames, maxBatch: batch,
                               subSpectralBands: subSpectralBands, seed: 7)
        var rng = SplitMix64(seed: 99)
        for slot in model.parameterSlots where slot.shape.count == 1 && slot.name != "fc.bias" {
            let (low, spread): (Float, Float) = slot.name.hasSuffix(".weight") ? (0.5, 1) : (-0.5, 1)
            for i in slot.range { model.parameters[i] = low + spread * rng.nextFloat() }
        }
        for _ in 0..<30 { _ = try features.withUnsafeBufferPointer { try model.forward(input: $0.baseAddress!, batch: batch, training: true) } }
        let metadata = CheckpointMetadata(
            architecture: arch.rawValue, width: width, classes: 10, dropout: 0.2, inputHeight: melBins, inputWidth: frames,
            audio: AudioSettings(), config: subSpectralBands > 1 ? "architecture:\n  subspectral_bands: \(subSpectralBands)\n" : "",
            fold: fold, validationSpeakers: [], seed: 7, step: 30, optimizerStep: 30,
            epochLossSum: 0, datasetKey: "", ranks: 1, metrics: nil, bestMetrics: nil)
        let buffers = Array(UnsafeBufferPointer(start: model.buffers, count: model.bufferCount))
        XCTAssertGreaterThan(buffers.map(abs).max()!, 10, "running statistics far from PyTorch's initial 0 and 1")
        try Checkpoint(metadata: metadata, sections: [
            ("parameters", Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount))),
            ("buffers", buffers),
        ]).write(to: path)
    }

    func export(_ arguments: [String]) throws -> ProcessResult {
        try runProcess([try digitsDistBinary(), "export"] + arguments, timeout: 120)
    }

    /// Exports `arch`, runs it in onnxruntime on batches of 1 and 3 clips and compares with our forward.
    func exportAndCompare(_ arch: Architecture, width: Int, subSpectralBands: Int = 1) throws {
        try requireONNXRuntime()
        let clips = 3, plane = melBins * frames
        let values = try features(count: clips)
        let checkpoint = "\(root)/\(arch).ckpt", onnx = "\(root)/\(arch).onnx"
        try writeCheckpoint(arch, width: width, subSpectralBands: subSpectralBands, features: values, to: checkpoint)

        let exported = try export(["--checkpoint", checkpoint, "--onnx", onnx])
        XCTAssertEqual(exported.status, 0, exported.summary)
        XCTAssertTrue(exported.stdout.contains("opset 13"), exported.stdout)
        XCTAssertTrue(exported.stdout.contains("input:  features float32 [N, 1, 128, 44]"), exported.stdout)
        XCTAssertTrue(exported.stdout.contains("output: probabilities float32 [N, 10]"), exported.stdout)

        let trained = try TrainedModel(path: checkpoint, batch: clips)
        let classifier = trained.classifier(batch: clips)
        for batch in [1, 3] {
            let npy = "\(root)/features-\(batch).npy"
            try NPY.write(path: npy, shape: [batch, 1, melBins, frames], values: Array(values[..<(batch * plane)]))
            let check = try runProcess(["python3", repositoryRoot + "/scripts/onnx-check.py", onnx, npy], timeout: 300)
            XCTAssertEqual(check.status, 0, check.summary)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any], check.summary)
            XCTAssertEqual(report["opset"] as? Int, 13)
            // BatchNorm is folded into the convolutions, or with sub-bands a Mul and Add after them: the graph
            // has none of its own.
            let operators = try XCTUnwrap(report["operators"] as? [String], check.summary)
            XCTAssertTrue(operators.contains("Conv"), "\(operators)")
            XCTAssertFalse(operators.contains("BatchNormalization"), "\(operators)")
            XCTAssertEqual(operators.contains("Mul"), subSpectralBands > 1, "\(operators)")
            func shape(_ group: String, _ name: String) -> String? {
                ((report[group] as? [String: [Any]])?[name]).map { $0.map { "\($0)" }.joined(separator: ", ") }
            }
            XCTAssertEqual(shape("inputs", "features"), "N, 1, 128, 44")
            XCTAssertEqual(shape("outputs", "logits"), "N, 10")
            XCTAssertEqual(shape("outputs", "probabilities"), "N, 10")
            let theirs = try XCTUnwrap(report["probabilities"] as? [[Double]]).flatMap { $0.map(Float.init) }
            let theirLogits = try XCTUnwrap(report["logits"] as? [[Double]]).flatMap { $0.map(Float.init) }

            let ours = try values.withUnsafeBufferPointer { buffer in
                try classifier.classify(count: batch) { (buffer.baseAddress! + $0 * plane, frames, 0) }
            }
            let ourLogits = try values.withUnsafeBufferPointer { buffer in
                Array(UnsafeBufferPointer(start: try trained.model.forward(input: buffer.baseAddress!, batch: batch, training: false),
                                          count: batch * 10))
            }
            XCTAssertEqual(theirs.count, batch * 10)
            XCTAssertEqual(theirLogits.count, batch * 10)
            let difference = zip(ours, theirs).map { abs($0 - $1) }.max()!
            let logitDifference = zip(ourLogits, theirLogits).map { abs($0 - $1) }.max()!
            print("ONNX \(arch) width \(width) sub-bands \(subSpectralBands) N=\(batch): max |Δprobability| \(difference), max |Δlogit| \(logitDifference), "
                + "logits in [\(ourLogits.min()!), \(ourLogits.max()!)], probabilities \(ours.map { String(format: "%.3f", $0) })")
            XCTAssertLessThanOrEqual(difference, 1e-4, "\(arch) N=\(batch)")
            // The comparison says something only if the probabilities are not all saturated at 0 or 1.
            XCTAssertTrue(ours.contains { $0 > 0.01 && $0 < 0.99 }, "\(ours)")
        }
    }

    func testResNet18ExportRunsInOnnxruntimeWithOurProbabilities() throws {
        try exportAndCompare(.resnet18, width: 4)
    }

    func testResNet50BottleneckExportRunsInOnnxruntimeWithOurProbabilities() throws {
        try exportAndCompare(.resnet50, width: 4)
    }

    /// SubSpectral BatchNorm in 5 bands: of bn1's 64 rows (12, 13, 13, 13, 13), layer1's 32, layer2's 16 and
    /// layer3's 8, uneven, and capped at one band per row in layer4's 4.
    func testSubSpectralExportRunsInOnnxruntimeWithOurProbabilities() throws {
        try exportAndCompare(.resnet18, width: 4, subSpectralBands: 5)
    }

    /// The graph, without onnxruntime: torchvision's layer count and tensor names, BatchNorm folded away,
    /// nodes in topological order.
    func testGraphHasTorchvisionsLayersAndNamesInTopologicalOrder() throws {
        let values = try features(count: 1)
        // Basic blocks have 2 convolutions, Bottlenecks 3; stages 2–4 (and resnet50's layer1) start with a projection.
        for (arch, unitsPerBlock, blocks, projections) in [(Architecture.resnet18, 2, 8, 3), (.resnet50, 3, 16, 4)] {
            let convolutions = 1 + unitsPerBlock * blocks + projections
            let path = "\(root)/\(arch).ckpt"
            try writeCheckpoint(arch, width: 2, features: values, to: path)
            let graph = try ONNXExport.model(from: TrainedModel(path: path, batch: 1)).graph
            let operators = Dictionary(graph.node.map { ($0.opType, 1) }, uniquingKeysWith: +)
            XCTAssertEqual(operators, ["Conv": convolutions, "Relu": 1 + unitsPerBlock * blocks, "Add": blocks, "MaxPool": 1,
                                       "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1, "Softmax": 1], "\(arch)")
            let names = graph.initializer.map(\.name)
            XCTAssertEqual(names.count, 2 * convolutions + 2)
            XCTAssertEqual(Set(names).count, names.count)
            XCTAssertTrue(names.contains("layer1.0.conv1.weight") && names.contains("layer2.0.downsample.0.bias"), "\(names)")
            XCTAssertFalse(names.contains { $0.contains("..") || $0.contains("bn") || $0.contains("downsample.1") }, "\(names)")
            var defined = Set(names + ["features"])
            for node in graph.node {
                for input in node.input { XCTAssertTrue(defined.contains(input), "\(node.name) reads \(input) before it exists") }
                defined.formUnion(node.output)
            }
            XCTAssertEqual(graph.output.map(\.description), ["logits float32 [N, 10]", "probabilities float32 [N, 10]"])
        }
    }

    func testARunFolderWithSeveralFoldsNeedsFold() throws {
        let values = try features(count: 1)
        for fold in 0..<2 {
            try FileManager.default.createDirectory(atPath: "\(root)/run/fold-\(fold)", withIntermediateDirectories: true)
            try writeCheckpoint(.resnet18, width: 2, features: values, fold: fold, to: "\(root)/run/fold-\(fold)/final.ckpt")
        }
        let unchosen = try export(["--checkpoint", root + "/run", "--onnx", root + "/model.onnx"])
        XCTAssertEqual(unchosen.status, 1, unchosen.summary)
        XCTAssertTrue(unchosen.stderr.contains("holds 2 fold models (fold-0, fold-1); choose one with --fold K"), unchosen.summary)
        XCTAssertEqual(unchosen.stderr.split(separator: "\n").count, 1, unchosen.summary)

        let absent = try export(["--checkpoint", root + "/run", "--fold", "5", "--onnx", root + "/model.onnx"])
        XCTAssertEqual(absent.status, 1, absent.summary)
        XCTAssertTrue(absent.stderr.contains("has no fold-5 (it has fold-0, fold-1)"), absent.summary)

        let mismatched = try export(["--checkpoint", root + "/run/fold-0/final.ckpt", "--fold", "1", "--onnx", root + "/model.onnx"])
        XCTAssertEqual(mismatched.status, 1, mismatched.summary)
        XCTAssertTrue(mismatched.stderr.contains("--fold 1: \(root)/run/fold-0/final.ckpt is the model of fold 0"), mismatched.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/model.onnx"))

        let chosen = try export(["--checkpoint", root + "/run", "--fold", "1", "--onnx", root + "/model.onnx"])
        XCTAssertEqual(chosen.status, 0, chosen.summary)
        XCTAssertTrue(chosen.stdout.contains("run/fold-1/final.ckpt"), chosen.summary)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/model.onnx"))
    }

    func testBadCheckpointsAreOneLineErrors() throws {
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: root + "/junk.ckpt"))
        for (checkpoint, problem) in [(root + "/missing.ckpt", "no such checkpoint or run folder"),
                                      (root + "/junk.ckpt", "truncated (16 bytes)")] {
            let run = try export(["--checkpoint", checkpoint, "--onnx", root + "/model.onnx"])
            XCTAssertEqual(run.status, 1, run.summary)
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.summary)
            XCTAssertTrue(run.stderr.contains("\(checkpoint): \(problem)"), run.summary)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/model.onnx"))
    }
}
