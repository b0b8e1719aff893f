import Audio
import Datasets
import Foundation
import NN

/// A trained network loaded from a checkpoint, ready for inference (BatchNorm on running statistics).
public struct TrainedModel {
    public let path: String
    public let metadata: CheckpointMetadata
    public let model: ResNet
    /// Frames of one inference chunk; the weights do not depend on it, so it may differ from training's.
    public let chunkFrames: Int
    /// How whole clips are classified: the run's inference keys.
    public let inference: InferencePlan
    /// The checkpoint section the BatchNorm statistics came from: "buffers", or the moving average's.
    let parametersSection, buffersSection: String

    /// Loads `path`; `chunkSeconds` sets the inference chunk (default: the training crop); `precision` the
    /// arithmetic (default: the run's `environment.mixed_precision_inference` on this CPU).
    public init(path: String, chunkSeconds: Double? = nil, batch: Int = 32, precision: Precision? = nil) throws {
        try self.init(checkpoint: Checkpoint.read(from: path), path: path, chunkSeconds: chunkSeconds, batch: batch,
                      precision: precision)
    }

    /// From a checkpoint already read (`path` names it in errors); `inferenceOverrides` (`prediction.*`
    /// key=value) change the run's inference keys.
    public init(checkpoint: Checkpoint, path: String, chunkSeconds: Double? = nil, batch: Int = 32,
                precision: Precision? = nil, inferenceOverrides: [String] = []) throws {
        let m = checkpoint.metadata
        self.path = path
        metadata = m
        chunkFrames = chunkSeconds.map {
            LogMelExtractor.frameCount(sampleCount: Int(($0 * Double(m.audio.sampleRate)).rounded()), settings: m.audio)
        } ?? m.inputWidth
        var saved = try RunConfig.parseSaved(yaml: m.config, source: path)
        try saved.apply(inferenceOverrides: inferenceOverrides)
        inference = saved.inferencePlan
        model = try ResNet(arch: Architecture(parsing: m.architecture), width: m.width, inputHeight: m.inputHeight,
                           inputWidth: chunkFrames, maxBatch: batch, classes: m.classes, dropout: Float(m.dropout),
                           subSpectralBands: saved.int("architecture.subspectral_bands"), seed: 0)
        model.precision = try precision ?? Precision.choose(
            mixed: saved.bool("environment.mixed_precision_inference"),
            override: ProcessInfo.processInfo.environment["DIGITS_DIST_BF16"]).precision
        // A run with `training.ema_decay` saved its weights' moving average too: that is the model to use.
        let averaged = checkpoint.section("ema.parameters") != nil
        parametersSection = averaged ? "ema.parameters" : "parameters"
        buffersSection = averaged ? "ema.buffers" : "buffers"
        for (name, destination, count) in [(parametersSection, model.parameters, model.parameterCount),
                                           (buffersSection, model.buffers, model.bufferCount)] {
            guard let values = checkpoint.section(name), values.count == count else {
                throw CheckpointError(path: path, problem: "section \(name) does not fit a \(m.architecture) of width \(m.width)")
            }
            destination.update(from: values, count: count)
        }
    }

    /// The checkpoints `location` stands for: a checkpoint file, a run folder's `final.ckpt`, or the
    /// `fold-K/final.ckpt` of each fold of a k-fold run folder (whose predictions are then averaged).
    public static func checkpoints(at location: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw CheckpointError(path: location, problem: "no such checkpoint or run folder")
        }
        guard isDirectory.boolValue else { return [location] }
        if FileManager.default.fileExists(atPath: location + "/final.ckpt") { return [location + "/final.ckpt"] }
        let folds = ((try? FileManager.default.contentsOfDirectory(atPath: location)) ?? [])
            .filter { $0.hasPrefix("fold-") && FileManager.default.fileExists(atPath: "\(location)/\($0)/final.ckpt") }
            .sorted { Int($0.dropFirst(5)) ?? 0 < Int($1.dropFirst(5)) ?? 0 }
        guard !folds.isEmpty else { throw CheckpointError(path: location, problem: "holds no final.ckpt (is the run finished?)") }
        return folds.map { "\(location)/\($0)/final.ckpt" }
    }

    /// The checkpoints of an ensemble, read: all that each location stands for (`checkpoints(at:)`: folds of a
    /// k-fold run, runs of other seeds or recipes), in order. Their probabilities are averaged, so each must
    /// read the same features as the first; one that does not is refused in a line naming it.
    public static func readEnsemble(at locations: [String]) throws -> [(path: String, checkpoint: Checkpoint)] {
        let members = try locations.flatMap(checkpoints(at:)).map { (path: $0, checkpoint: try Checkpoint.read(from: $0)) }
        guard let first = members.first else { throw CheckpointError(path: "--checkpoint", problem: "no checkpoint given") }
        for member in members.dropFirst() where member.checkpoint.metadata.audio != first.checkpoint.metadata.audio {
            throw CheckpointError(path: member.path, problem: "was trained on other audio settings than \(first.path): "
                                  + "an ensemble's models must read the same features")
        }
        return members
    }

    /// Writes the checkpoint this model was read from with the model's weights and BatchNorm statistics as they
    /// are now (adapted: `ChunkedClassifier.adaptByEntropy`, `adaptBatchNorm`) in place of the saved ones,
    /// everything else as it was.
    public func writeAdapted(to destination: String) throws {
        var checkpoint = try Checkpoint.read(from: path)
        for (name, values, count) in [(parametersSection, model.parameters, model.parameterCount),
                                      (buffersSection, model.buffers, model.bufferCount)] {
            guard let index = checkpoint.sections.firstIndex(where: { $0.name == name }) else {
                throw CheckpointError(path: path, problem: "has no section \(name)")
            }
            checkpoint.sections[index].values = Array(UnsafeBufferPointer(start: values, count: count))
        }
        try checkpoint.write(to: destination)
    }

    public func classifier(batch: Int = 32) -> ChunkedClassifier {
        ChunkedClassifier(model: model, melBins: metadata.inputHeight, cropFrames: chunkFrames, batch: batch, plan: inference)
    }
}
