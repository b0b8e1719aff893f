import Audio
import Augment
import Datasets
import Dist
import Foundation
import NN

/// The run config's training keys, checked and typed once before any work starts.
public struct TrainingRecipe: Sendable {
    public var architecture: Architecture
    public var width: Int
    public var dropout: Double
    /// `architecture.subspectral_bands`: every BatchNorm normalises this many mel bands apart.
    public var subSpectralBands: Int
    public var audio: AudioSettings
    /// Frames in one training crop (`audio.training_chunk_seconds`).
    public var cropFrames: Int
    public var seed: UInt64
    public var globalBatch: Int
    public var epochs: Int
    public var learningRate: Double
    public var weightDecay: Double
    public var warmupEpochs: Double
    public var cosine: Bool
    public var gradientClip: Double
    public var gradientAccumulation: Int
    public var dropLastBatch: Bool
    public var crossEntropy: Bool
    public var evaluationEpochs: Int
    /// nil: `GradientBucketer.automaticBucketBytes` for the model.
    public var bucketBytes: Int?
    public var bucketMode: GradientBucketer.Mode = .overlapped
    public var syncBatchNormSetting: String
    /// `training.differential_learning_rate_layers` (model parts: backbone, head, conv1, bn1, layer1…4, fc)
    /// train at `differentialLearningRate` (scaled by the same schedule) instead of `learningRate`.
    public var differentialLayers: [String]
    public var differentialLearningRate: Double
    /// Also score the training clips at each validation (`training.calculate_train_metric`).
    public var calculateTrainMetric: Bool
    /// mixup of audio, nil when disabled.
    public var mixup: Mixup?
    /// How a training crop is made: its place in the window (`audio.short_clip_position`,
    /// `augmentation.time_shift_seconds`), the `augmentation.*` keys (before mixup) and
    /// `audio.spectrogram_normalization` (inference normalises alike).
    public var crop: TrainingCrop
    /// How validation classifies whole clips (`prediction.*`, and the crop's placement and normalisation).
    public var inference: InferencePlan
    /// ε of `training.label_smoothing`.
    public var labelSmoothing: Float
    /// `training.ema_decay`: the weights' moving average that validation and inference use (0 = none).
    public var weightAverageDecay: Double
    /// torchvision weights to start from (`--pretrained FILE`).
    public var pretrainedPath: String?
    public var checkpointEverySteps: Int
    public var keepCheckpoints: Int
    /// `prediction.metric`: what makes one validation better than another (best.ckpt).
    public var selectByAccuracy: Bool
    /// The arithmetic of training steps and of forward-only passes: set by the caller from the CPU
    /// (`PrecisionPlan.agreed`), Float32 until then.
    public var precision = PrecisionPlan.float32

    public init(config: RunConfig, seed: UInt64, pretrainedPath: String? = nil) throws {
        self.pretrainedPath = pretrainedPath
        architecture = try Architecture(parsing: config.string("architecture.backbone"))
        width = config.int("architecture.width")
        dropout = config.double("architecture.dropout")
        subSpectralBands = config.int("architecture.subspectral_bands")
        audio = config.audioSettings
        try audio.validate()
        cropFrames = LogMelExtractor.frameCount(
            sampleCount: Int((config.double("audio.training_chunk_seconds") * Double(audio.sampleRate)).rounded()),
            settings: audio)
        self.seed = seed
        globalBatch = config.int("training.batch_size")
        epochs = config.int("training.epochs")
        learningRate = config.double("training.learning_rate")
        weightDecay = config.double("training.weight_decay")
        warmupEpochs = config.double("training.warmup_epochs")
        cosine = config.string("training.schedule") == "Cosine"
        gradientClip = config.double("training.gradient_clip")
        gradientAccumulation = config.int("training.grad_accumulation")
        dropLastBatch = config.bool("training.drop_last_batch")
        crossEntropy = config.string("training.loss_function") == "CrossEntropy"
        evaluationEpochs = max(1, Int(config.double("training.evaluation_epochs").rounded()))
        let bucketMegabytes = config.double("training.bucket_megabytes")
        bucketBytes = bucketMegabytes > 0 ? max(4, Int(bucketMegabytes * 1_048_576)) : nil
        syncBatchNormSetting = config.string("training.sync_batchnorm")
        checkpointEverySteps = config.int("training.checkpoint_every_steps")
        keepCheckpoints = config.int("training.keep_checkpoints")
        selectByAccuracy = config.string("prediction.metric") == "Accuracy"
        mixup = config.string("augmentation.mix_audio") == "Mixup"
            ? Mixup(concentration: config.double("augmentation.mix_concentration"),
                    iterations: config.int("augmentation.mix_iterations"),
                    probability: config.double("augmentation.mix_probability"))
            : nil
        crop = TrainingCrop(
            melBins: audio.melBins, frames: cropFrames, shortClipPosition: config.shortClipPosition,
            timeShiftFrames: config.frames("augmentation.time_shift_seconds"),
            augmentation: try SpeakerAugmentation(config: config), normalization: config.normalization)
        crop.trimFrames = config.frames("augmentation.trim_seconds")
        inference = config.inferencePlan(placing: config.shortClipPosition)
        labelSmoothing = Float(config.double("training.label_smoothing"))
        weightAverageDecay = config.double("training.ema_decay")
        calculateTrainMetric = config.bool("training.calculate_train_metric")
        differentialLayers = config.list("training.differential_learning_rate_layers")
        differentialLearningRate = config.double("training.differential_learning_rate")
        if !differentialLayers.isEmpty && differentialLearningRate <= 0 {
            throw ConfigError("training.differential_learning_rate = \(differentialLearningRate): must be positive when layers are listed")
        }
        if config.bool("architecture.pretrained") && pretrainedPath == nil {
            Log.info("architecture.pretrained = true: no --pretrained FILE given, so training starts from random weights")
        }
    }

    /// What checkpoints record of the data a run trains on, so that a resume refuses changed files: the
    /// feature cache's key (audio settings and every file's path, size and time), and the noise recordings'
    /// when `augmentation.noise_folder` is used.
    public func dataKey(of cache: FeatureCache) -> String {
        String(cache.key, radix: 16) + (crop.augmentation.recordedNoise.map { " noise " + String($0.cache.key, radix: 16) } ?? "")
    }

    /// Synchronised BatchNorm when asked, or (auto) when a rank's share of the batch is below 16.
    public func syncBatchNorm(ranks: Int) -> Bool {
        switch syncBatchNormSetting {
        case "true": return ranks > 1
        case "false": return false
        default: return ranks > 1 && globalBatch / ranks < 16
        }
    }

    /// The learning rate of each step: linear warm-up, then cosine decay to 0 (or constant).
    func schedule(totalSteps: Int, stepsPerEpoch: Int) throws -> (Int) -> Float {
        let warmup = min(totalSteps - 1, Int((warmupEpochs * Double(stepsPerEpoch)).rounded()))
        if cosine {
            let cosineSchedule = try CosineSchedule(base: Float(learningRate), warmupSteps: warmup, totalSteps: totalSteps)
            return cosineSchedule.learningRate(atStep:)
        }
        let base = Float(learningRate)
        return { step in step < warmup ? base * Float(step + 1) / Float(warmup) : base }
    }

    /// Whether validation runs after `epoch` (0-based): every `evaluation_epochs` epochs, and after the last.
    func evaluates(afterEpoch epoch: Int) -> Bool {
        (epoch + 1) % evaluationEpochs == 0 || epoch == epochs - 1
    }

    func isBetter(_ metrics: ClassificationMetrics, than best: ClassificationMetrics?) -> Bool {
        guard let best else { return true }
        return selectByAccuracy ? metrics.accuracy > best.accuracy : (metrics.macroROCAUC ?? 0) > (best.macroROCAUC ?? 0)
    }

    /// The configured loss against target distributions: mean over the batch, writing dlogits.
    func loss(_ logits: UnsafePointer<Float>, _ targets: UnsafePointer<Float>, _ batch: Int,
              _ dlogits: UnsafeMutablePointer<Float>) throws -> Float {
        crossEntropy
            ? try Loss.softmaxCrossEntropy(logits: logits, targets: targets, batch: batch, classes: 10, dlogits: dlogits)
            : try Loss.binaryCrossEntropyWithLogits(logits: logits, targets: targets, batch: batch, classes: 10, dlogits: dlogits)
    }
}

extension SpeakerAugmentation {
    /// The `augmentation.*` keys of the crop augmentations.
    init(config: RunConfig) throws {
        self.init()
        tempo = config.double("augmentation.tempo")
        vocalTract = config.double("augmentation.vocal_tract")
        equalizer = config.double("augmentation.equalizer_db")
        gain = config.double("augmentation.gain_db")
        reverbProbability = config.double("augmentation.reverb_probability")
        reverbMaxSeconds = config.double("augmentation.reverb_max_seconds")
        frameSeconds = config.audioSettings.hopSeconds
        noiseProbability = config.double("augmentation.noise_probability")
        let lowest = config.double("augmentation.noise_min_snr_db"), highest = config.double("augmentation.noise_max_snr_db")
        guard lowest <= highest else {
            throw ConfigError("augmentation.noise_min_snr_db = \(lowest) is above augmentation.noise_max_snr_db = \(highest)")
        }
        noiseSNR = lowest...highest
        frequencyMasks = config.int("augmentation.frequency_masks")
        frequencyMaskBins = config.int("augmentation.frequency_mask_bins")
        timeMasks = config.int("augmentation.time_masks")
        timeMaskFrames = config.int("augmentation.time_mask_frames")
    }
}

extension RunConfig {
    /// `audio.short_clip_position`.
    var shortClipPosition: LogMelCrop.ShortClipPosition {
        LogMelCrop.ShortClipPosition(rawValue: string("audio.short_clip_position")) ?? .center
    }

    /// `audio.spectrogram_normalization`.
    var normalization: SpectrogramNormalization {
        SpectrogramNormalization(rawValue: string("audio.spectrogram_normalization")) ?? .no
    }

    /// A duration key (seconds) in feature frames: hops at the configured rate.
    func frames(_ key: String) -> Int {
        Int((double(key) * Double(audioSettings.sampleRate) / Double(audioSettings.hopSize)).rounded())
    }

    /// The inference keys, short clips placed at `position`.
    func inferencePlan(placing position: LogMelCrop.ShortClipPosition) -> InferencePlan {
        var plan = InferencePlan()
        plan.shortClipPosition = position
        plan.weighting = ChunkedClassifier.ChunkWeighting(rawValue: string("prediction.chunk_weighting")) ?? .energy
        plan.normalization = normalization
        plan.shiftFrames = frames("prediction.tta_shift_seconds")
        plan.warp = double("prediction.tta_vocal_tract")
        return plan
    }

    /// The inference keys (of a saved config: `parseSaved`).
    var inferencePlan: InferencePlan { inferencePlan(placing: shortClipPosition) }
}
