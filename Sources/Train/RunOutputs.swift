import Datasets
import Foundation

/// The run folder's record, written by rank 0: `steps.jsonl` (loss and learning rate of every step),
/// `metrics.jsonl` (one object per validation: epoch and fold), `summary.json` (every fold and the
/// k-fold mean ± standard deviation), `folds.json` (what each run trains and validates on).
public final class RunOutputs {
    public let directory: String
    private let steps: Int32
    private let metrics: Int32
    /// One encoder for every record: a step's record costs one encode and one write(2).
    private let encoder = JSONEncoder.sorted

    /// Opens the run folder's record files for appending (one line per write(2) with O_APPEND, so the
    /// leaders of fold-parallel groups can share them). `fresh` refuses a folder that already holds a run.
    public init(directory: String, fresh: Bool) throws {
        self.directory = directory
        if fresh, let size = try? FileManager.default.attributesOfItem(atPath: directory + "/steps.jsonl")[.size] as? Int, size > 0 {
            throw TrainingError("\(directory) already holds a run: continue it with --resume, or choose another --out")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        steps = try Self.appending(directory + "/steps.jsonl")
        metrics = try Self.appending(directory + "/metrics.jsonl")
    }

    deinit {
        close(steps)
        close(metrics)
    }

    static func appending(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw TrainingError("\(path): cannot be opened for writing (\(errnoText()))") }
        return fd
    }

    /// Before a fold resumes at `step`, drops what was recorded after that step, so the records read as
    /// if the run had never stopped.
    public func forget(fold: Int?, after step: Int) throws {
        struct Position: Decodable { var fold: Int?; var step: Int }
        for (name, keepsStep) in [("steps.jsonl", false), ("metrics.jsonl", true)] {
            let path = directory + "/" + name
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            let kept = lines.filter { line in
                guard let position = try? JSONDecoder().decode(Position.self, from: Data(line.utf8)),
                      position.fold == fold else { return true }
                return keepsStep ? position.step <= step : position.step < step
            }
            if kept.count < lines.count {
                try Data(kept.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            }
        }
    }

    public struct StepRecord: Codable {
        public var fold: Int?
        public var epoch: Int
        public var step: Int
        public var loss: Float
        public var learning_rate: Float
    }

    public struct EpochRecord: Codable {
        public var fold: Int?
        public var epoch: Int
        public var step: Int
        public var train_loss: Double
        public var learning_rate: Float
        public var samples_per_second: Double
        public var validation: ClassificationMetrics?
        /// The same metrics on the training clips (`training.calculate_train_metric`).
        public var training: ClassificationMetrics?
    }

    func recordStep(fold: Int?, epoch: Int, step: Int, loss: Float, learningRate: Float) throws {
        try append(StepRecord(fold: fold, epoch: epoch, step: step, loss: loss, learning_rate: learningRate), to: steps)
    }

    func recordEpoch(fold: Int?, epoch: Int, step: Int, trainLoss: Double, learningRate: Float,
                     samplesPerSecond: Double, metrics: ClassificationMetrics?, trainMetrics: ClassificationMetrics? = nil) throws {
        try append(EpochRecord(fold: fold, epoch: epoch, step: step, train_loss: trainLoss, learning_rate: learningRate,
                               samples_per_second: samplesPerSecond, validation: metrics, training: trainMetrics), to: self.metrics)
    }

    private func append<T: Encodable>(_ record: T, to fd: Int32) throws {
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw TrainingError("\(directory): cannot append a record (\(errnoText()))") }
    }

    public struct FoldSummary: Codable, Sendable {
        public var fold: Int?
        public var validation_speakers: [String]
        public var checkpoint: String
        public var metrics: ClassificationMetrics?
        /// The test set's scores (runs with `dataset.test_dataframe` or `data_folder_test`).
        public var test: TestScores?

        public init(fold: Int?, validation_speakers: [String], checkpoint: String, metrics: ClassificationMetrics?,
                    test: TestScores? = nil) {
            self.fold = fold
            self.validation_speakers = validation_speakers
            self.checkpoint = checkpoint
            self.metrics = metrics
            self.test = test
        }
    }

    /// A fold's final and best models on the test set.
    public struct TestScores: Codable, Sendable {
        public var final: ClassificationMetrics?
        public var best: ClassificationMetrics?
    }

    /// folds.json: what each run of the folder trains and validates on, written when it starts.
    public struct FoldPlan: Codable, Sendable, Equatable {
        public var fold: Int?
        public var validation_speakers: [String]
        public var training_speakers: [String]
        public var validation_clips: Int
        public var training_clips: Int
        /// The fold's own test speakers (AudioMNIST's splits), absent otherwise.
        public var test_speakers: [String]?
        public var test_clips: Int?
    }

    public func writeFoldPlan(_ runs: [FoldRun], dataset: Dataset, foldSeed: Int) throws {
        struct File: Encodable { var fold_seed: Int; var folds: [FoldPlan] }
        let folds = runs.map { run in
            FoldPlan(fold: run.fold, validation_speakers: run.validationSpeakers,
                     training_speakers: Array(Set(run.trainingClips.map { dataset.clips[$0].speaker })).sorted(),
                     validation_clips: run.validationClips.count, training_clips: run.trainingClips.count,
                     test_speakers: run.testSpeakers.isEmpty ? nil : run.testSpeakers,
                     test_clips: run.testSpeakers.isEmpty ? nil : run.testClips.count)
        }
        try writeJSON(File(fold_seed: foldSeed, folds: folds), to: "folds.json")
    }

    public struct Summary: Codable, Sendable {
        public var experiment_name: String
        public var ranks: Int
        /// Per rank: its host and its BLAS threads (absent in runs written before they were recorded).
        public var hosts: [String]?
        public var blas_threads: [Int]?
        /// The arithmetic of the matrix products: "training" and "inference", each "fp32" or "bf16"
        /// (absent in runs written before mixed precision existed: Float32).
        public var precision: [String: String]?
        public var folds: [FoldSummary]
        public var accuracy_mean: Double?
        public var accuracy_std: Double?
        public var macro_roc_auc_mean: Double?
        public var macro_roc_auc_std: Double?
        /// The final models' test-set accuracy over folds (runs with a test set).
        public var test_accuracy_mean: Double?
        public var test_accuracy_std: Double?
        public var seconds: Double
    }

    /// Writes summary.json with the mean and (population) standard deviation over folds.
    @discardableResult
    public func writeSummary(experiment: String, ranks: Int, hosts: [String]? = nil, blasThreads: [Int]? = nil,
                             precision: PrecisionPlan = .float32, folds: [FoldSummary], seconds: Double) throws -> Summary {
        let meanStd = Self.meanAndStandardDeviation
        let accuracy = meanStd(folds.compactMap { $0.metrics?.accuracy })
        let auc = meanStd(folds.compactMap { $0.metrics?.macroROCAUC })
        let test = meanStd(folds.compactMap { $0.test?.final?.accuracy })
        let summary = Summary(experiment_name: experiment, ranks: ranks, hosts: hosts, blas_threads: blasThreads,
                              precision: ["training": precision.training.rawValue,
                                          "inference": precision.inference.rawValue],
                              folds: folds,
                              accuracy_mean: accuracy.0,
                              accuracy_std: accuracy.1, macro_roc_auc_mean: auc.0, macro_roc_auc_std: auc.1,
                              test_accuracy_mean: test.0, test_accuracy_std: test.1, seconds: seconds)
        try writeJSON(summary, to: "summary.json")
        return summary
    }

    /// A whole-file record of the run folder (summary.json, folds.json), readable and written atomically.
    private func writeJSON<T: Encodable>(_ value: T, to name: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(value).write(to: URL(fileURLWithPath: directory + "/" + name), options: .atomic)
    }

    /// Mean and population standard deviation over folds (nil, nil for none): summary.json's and the report's.
    public static func meanAndStandardDeviation(_ values: [Double]) -> (Double?, Double?) {
        guard !values.isEmpty else { return (nil, nil) }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        return (mean, variance.squareRoot())
    }
}
