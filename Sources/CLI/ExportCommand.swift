import ArgumentParser
import Export
import Foundation
import Train

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a trained model as ONNX (opset 13), for onnxruntime and other ONNX runtimes.",
        discussion: """
            The network is exported in eval mode: every BatchNorm is folded into the convolution before it \
            and dropout is left out. The graph's input is "features", float32 [N, 1, mel bins, frames] (the \
            log-mel dB values `digits-dist features` writes, cut to the training crop); N, the batch, is \
            free. It has two outputs: "logits" [N, classes] and "probabilities" (their softmax).

            Examples:
              digits-dist export --checkpoint runs/demo/final.ckpt --onnx digits.onnx
              digits-dist export --checkpoint runs/demo --fold 2 --onnx digits-fold2.onnx
            """)

    @Option(help: "A checkpoint file, or a run folder (its final.ckpt, or fold-K/final.ckpt chosen with --fold).")
    var checkpoint: String

    @Option(help: "Which fold's model to export from a k-fold run folder.")
    var fold: Int?

    @Option(help: "The .onnx file to write.")
    var onnx: String

    func run() throws {
        try failing {
            let trained = try TrainedModel(path: try Self.checkpointPath(at: checkpoint, fold: fold), batch: 1)
            if let fold, trained.metadata.fold != fold {
                throw ValidationError("--fold \(fold): \(trained.path) is the model of "
                    + (trained.metadata.fold.map { "fold \($0)" } ?? "a run on named validation speakers"))
            }
            let model = try ONNXExport.model(from: trained)
            let bytes = model.serialized()
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: onnx), options: .atomic)
            } catch {
                throw ValidationError("\(onnx): cannot write (\(error.localizedDescription))")
            }
            let m = trained.metadata
            print("wrote \(onnx) (\(String(format: "%.1f", Double(bytes.count) / 1e6)) MB): \(m.architecture) width \(m.width) from \(trained.path), "
                + "ONNX opset \(ONNXExport.opsetVersion) (IR version \(ONNXExport.irVersion))")
            for input in model.graph.input { print("input:  \(input)") }
            for output in model.graph.output { print("output: \(output)") }
            if trained.inference.normalization != .no {
                print("note: the run normalises features (audio.spectrogram_normalization = "
                    + "\(trained.inference.normalization.rawValue)); feed the model features normalised the same way")
            }
        }
    }

    /// The one checkpoint `location` names: a file, a run folder's final.ckpt, or fold `fold` of a k-fold run.
    static func checkpointPath(at location: String, fold: Int?) throws -> String {
        let paths = try TrainedModel.checkpoints(at: location)
        guard paths.count > 1 else { return paths[0] }
        let folds = paths.map { URL(fileURLWithPath: $0).deletingLastPathComponent().lastPathComponent }
        guard let fold else {
            throw ValidationError("\(location) holds \(paths.count) fold models (\(folds.joined(separator: ", "))); "
                + "choose one with --fold K")
        }
        guard let index = folds.firstIndex(of: "fold-\(fold)") else {
            throw ValidationError("--fold \(fold): \(location) has no fold-\(fold) (it has \(folds.joined(separator: ", ")))")
        }
        return paths[index]
    }
}
