/// Every key a run config may hold: the seed's H2O Hydrogen Torch keys, which digits-dist accepts as
/// they are, plus a few of its own. A key either drives behaviour or is accepted and ignored for the
/// reason given beside it (this list is the reference the README points to).
public struct ConfigKey: Sendable {
    public enum Kind: Sendable, Equatable {
        case int(ClosedRange<Int>)
        case double(ClosedRange<Double>)
        case bool
        case string
        case choice([String])
        case list
    }

    public let name: String
    public let kind: Kind
    public let defaultValue: ConfigValue
    /// Why a key that changes nothing is accepted anyway; nil for keys that drive behaviour.
    public let ignoredBecause: String?
    public let help: String

    init(_ name: String, _ kind: Kind, _ defaultValue: ConfigValue, _ help: String, ignoredBecause: String? = nil) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.help = help
        self.ignoredBecause = ignoredBecause
    }
}

extension ConfigKey {
    static let none = ConfigValue.string("None")
    static let anyInt = Int.min...Int.max
    static let positive = 1...Int.max
    static let unit = 0.0...1.0

    public static let all: [ConfigKey] = [
        .init("experiment_name", .string, .string("digits"), "name shown in logs and the report"),

        .init("architecture.backbone", .choice(["resnet18", "resnet34", "resnet50"]), .string("resnet50"), "ResNet depth"),
        .init("architecture.width", .int(1...512), .int(64), "channels of the first stage (64 = standard ResNet)"),
        .init("architecture.dropout", .double(0.0...0.99), .double(0), "dropout before the classifier"),
        .init("architecture.subspectral_bands", .int(1...64), .int(4),
              "BatchNorm per band of mel rows (SubSpectral Normalization; default 4: unseen speakers +1.1 points with reverb_probability 0.5, six seeds); 1 = plain BatchNorm"),
        .init("architecture.pool", .choice(["Average"]), .string("Average"), "global pooling before the classifier"),
        .init("architecture.pretrained", .bool, .bool(false), "start from torchvision weights given with --pretrained FILE"),

        .init("audio.audio_parameters", .choice(["Auto", "Manual"]), .string("Auto"),
              "H2O's switch for its own defaults", ignoredBecause: "the audio.* values below are always used as given"),
        .init("audio.sample_rate", .int(4000...192_000), .int(22_050), "every clip is resampled to this rate (Hz)"),
        .init("audio.stft_window_size", .int(16...65_536), .int(2048), "FFT size and Hann window length"),
        .init("audio.hop_size", .int(1...65_536), .int(512), "samples between frames"),
        .init("audio.mel_frequency_bins", .int(1...1024), .int(128), "mel bands"),
        .init("audio.minimum_frequency", .double(0...1e6), .double(50), "lowest mel band edge (Hz)"),
        .init("audio.maximum_frequency", .double(1...1e6), .double(16_000), "highest mel band edge (Hz); above Nyquist leaves the top bands empty, as librosa"),
        .init("audio.spectrogram_normalization", .choice(["No", "PerClip", "PerBand"]), .string("PerClip"),
              "No (the seed's): log-mel dB as librosa's power_to_db; PerClip (default): minus the clip's mean, over its std (unseen speakers +4 points); PerBand: minus each mel band's mean over the clip, over the clip's std"),
        .init("audio.training_chunk_seconds", .double(0.05...600), .double(1), "length of the random training crops (zero-padded when shorter)"),
        .init("audio.short_clip_position", .choice(["Center", "Start", "Energy"]), .string("Center"),
              "where a clip shorter than the crop sits in it, in training and inference (the rest is its silence level): Center, Start, or Energy (its energy centroid at the crop's middle)"),

        .init("augmentation.mix_audio", .choice(["Disabled", "Mixup"]), .string("Disabled"), "mixup of training clips"),
        .init("augmentation.mix_concentration", .double(0.001...1000), .double(1), "Beta(α, α) of the mixing ratio"),
        .init("augmentation.mix_iterations", .int(1...16), .int(1), "clips mixed into each clip"),
        .init("augmentation.mix_probability", .double(unit), .double(1), "share of batches that are mixed"),
        .init("augmentation.mix_target", .choice(["Ratio"]), .string("Ratio"), "targets mixed in the same ratio as the audio"),
        .init("augmentation.time_shift_seconds", .double(0...600), .double(0.15), "a short clip moves by up to ± this inside its training crop"),
        .init("augmentation.trim_seconds", .double(0...600), .double(0),
              "a short clip loses up to this much of its start and of its end (a tighter endpointer's cut)"),
        .init("augmentation.tempo", .double(0...0.5), .double(0.1), "training crops stretched in time by 1 ± up to this (speed perturbation)"),
        .init("augmentation.vocal_tract", .double(0...0.5), .double(0.1), "mel axis warped by 1 ± up to this (vocal-tract-length perturbation)"),
        .init("augmentation.equalizer_db", .double(0...40), .double(0), "mel bands moved by a smooth random curve of up to ± this many dB (microphone and line colouring)"),
        .init("augmentation.gain_db", .double(0...60), .double(6), "training crops made louder or quieter by up to ± this many dB"),
        .init("augmentation.reverb_probability", .double(unit), .double(0.5),
              "share of training crops with a room's reverberation added (late reverberation, in power); 0 = none"),
        .init("augmentation.reverb_max_seconds", .double(0.1...5), .double(0.8),
              "longest reverberation time (60 dB decay) drawn, from 0.1 s"),
        .init("augmentation.noise_probability", .double(unit), .double(0.5), "share of training crops with added noise"),
        .init("augmentation.noise_min_snr_db", .double(-30...100), .double(10), "lowest signal-to-noise ratio of added noise (dB)"),
        .init("augmentation.noise_max_snr_db", .double(-30...100), .double(40), "highest signal-to-noise ratio of added noise (dB)"),
        .init("augmentation.noise_folder", .string, none,
              "a folder of noise recordings (.wav/.flac at any depth: a room, a street, babble; relative to the config file) added as the noise instead of generated white noise"),
        .init("augmentation.frequency_masks", .int(0...16), .int(2), "SpecAugment: mel bands masked per training crop"),
        .init("augmentation.frequency_mask_bins", .int(0...1024), .int(16), "SpecAugment: widest masked band (mel bins)"),
        .init("augmentation.time_masks", .int(0...16), .int(2), "SpecAugment: time spans masked per training crop"),
        .init("augmentation.time_mask_frames", .int(0...10_000), .int(6), "SpecAugment: longest masked span (frames)"),

        .init("dataset.audio_column", .string, .string("audio"), "CSV column with the audio path"),
        .init("dataset.data_folder", .string, none, "folder the CSV's audio paths are relative to (relative to the config file)"),
        .init("dataset.data_folder_test", .string, none,
              "folder test_dataframe's audio paths are relative to, or alone a test dataset folder (relative to the config file)"),
        .init("dataset.data_sample", .double(0.001...1), .double(1), "share of the data used (for quick runs)"),
        .init("dataset.data_sample_choice", .list, .list(["Train", "Validation"]), "which splits data_sample applies to"),
        .init("dataset.extra_training_data", .string, none,
              "a folder or CSV of extra clips (e.g. `digits-dist synth` or `scripts/synth-kokoro.py` voices) added to every run's training set and never validated on"),
        .init("dataset.folds", .list, .list(["0"]), "folds (validation splits) to run; 'all' runs every fold"),
        .init("dataset.fold_seed", .int(0...Int(Int32.max)), .int(0),
              "seed of the speaker folds: they depend on the dataset and this alone, so runs of any environment.seed share them"),
        .init("dataset.group_fold_column", .string, .string("speaker"), "what folds group by; digits-dist always groups by speaker when it knows it"),
        .init("dataset.label_columns", .list, .list(["label"]), "CSV column with the digit (the first one listed)"),
        .init("dataset.test_dataframe", .string, none,
              "test CSV: scored at the end of every fold with its final and best models (summary.json, the report)"),
        .init("dataset.train_dataframe", .string, none, "CSV of the data (relative to the config file); --data overrides"),
        .init("dataset.unlabeled_dataframe", .string, none, "unlabelled CSV", ignoredBecause: "no semi-supervised training"),
        .init("dataset.validation_dataframe", .string, none, "separate validation CSV", ignoredBecause: "validation comes from the speaker folds"),
        .init("dataset.validation_size", .double(0.01...0.99), .double(0.2), "validation share: the number of folds is round(1 / validation_size)"),
        .init("dataset.validation_strategy", .choice(["kfold", "AudioMNISTSplits"]), .string("kfold"),
              "speaker-grouped k-fold, or AudioMNIST's 5 published splits (36 training, 12 validation, 12 test speakers each)"),

        .init("environment.gpus", .list, .list([]), "GPU ids", ignoredBecause: "digits-dist trains on CPU cores across MPI ranks"),
        .init("environment.mixed_precision_inference", .bool, .bool(false),
              "bf16 matrix products (Float32 sums) in validation, test scores, evaluate and predict, where the CPU runs them faster than Float32"),
        .init("environment.mixed_precision_training", .bool, .bool(false),
              "bf16 matrix products (Float32 sums, master weights, BatchNorm, loss, AdamW) in training steps, where the CPU runs them faster than Float32; DIGITS_DIST_BF16=on|off forces"),
        .init("environment.number_of_workers", .int(0...1024), .int(0), "threads building the feature cache (0 = all cores)"),
        .init("environment.seed", .int(anyInt), .int(-1), "seed of weights, folds and data order; -1 picks one and logs it"),

        .init("logging.logger", .choice(["None"]), .string("None"), "external logger", ignoredBecause: "metrics go to the run folder's metrics.jsonl and report.html"),
        .init("logging.neptune_project", .string, .string(""), "Neptune project", ignoredBecause: "no external logger"),
        .init("logging.number_of_audios", .int(0...1024), .int(8), "audio samples logged", ignoredBecause: "no external logger"),

        .init("prediction.inference_chunk_method", .choice(["Fix"]), .string("Fix"), "long clips are cut into fixed chunks whose predictions are averaged"),
        .init("prediction.chunk_weighting", .choice(["Energy", "Equal"]), .string("Energy"),
              "chunks of a long clip averaged weighted by their mean power (a silent tail does not dilute the word), or equally"),
        .init("prediction.tta_shift_seconds", .double(0...600), .double(0), "test-time augmentation: each chunk also classified moved by ± this, averaged"),
        .init("prediction.tta_vocal_tract", .double(0...0.5), .double(0), "test-time augmentation: each chunk also classified with its mel axis warped by 1 ± this, averaged"),
        .init("prediction.inference_chunk_seconds", .double(0.05...600), .double(1), "chunk length for predict"),
        .init("prediction.max_inference_chunk_seconds", .double(0.05...86_400), .double(600), "longest audio predict reads"),
        .init("prediction.metric", .choice(["ROC_AUC", "Accuracy"]), .string("ROC_AUC"), "validation metric that picks the best checkpoint"),
        .init("prediction.probability_threshold", .double(unit), .double(0.5), "threshold for binary labels",
              ignoredBecause: "digits are one of ten classes: the prediction is the most probable digit"),

        .init("training.automatically_adjust_batch_size", .bool, .bool(false), "H2O's GPU-memory probe", ignoredBecause: "batch_size is the global batch on every rank count"),
        .init("training.batch_size", .int(positive), .int(32), "global batch (split across ranks)"),
        .init("training.build_scoring_pipelines", .bool, .bool(true), "H2O scoring pipeline", ignoredBecause: "`digits-dist export --onnx` makes the deployable model"),
        .init("training.calculate_train_metric", .bool, .bool(false), "also score the training data each epoch"),
        .init("training.differential_learning_rate", .double(0...10), .double(0.001), "learning rate of the layers named in differential_learning_rate_layers"),
        .init("training.differential_learning_rate_layers", .list, .list([]), "layers (e.g. backbone) trained at differential_learning_rate"),
        .init("training.drop_last_batch", .bool, .bool(true), "drop the last incomplete batch of an epoch"),
        .init("training.ema_decay", .double(0...0.99999), .double(0),
              "exponential moving average of the weights and BatchNorm statistics, validated, tested and saved for inference (0 = off; e.g. 0.99)"),
        .init("training.epochs", .int(positive), .int(5), "epochs per fold"),
        .init("training.evaluation_epochs", .double(0.01...1000), .double(1), "validate every this many epochs"),
        .init("training.grad_accumulation", .int(1...1024), .int(1), "batches whose gradients are summed before a step"),
        .init("training.gradient_clip", .double(0...1e9), .double(0), "global gradient norm limit (0 = off)"),
        .init("training.learning_rate", .double(1e-12...10), .double(0.001), "peak learning rate"),
        .init("training.label_smoothing", .double(0...0.5), .double(0), "targets (1 − ε)·one-hot + ε/10"),
        .init("training.loss_function", .choice(["BCE", "CrossEntropy"]), .string("BCE"), "BCE-with-logits on one-hot targets, or softmax cross-entropy"),
        .init("training.optimizer", .choice(["AdamW"]), .string("AdamW"), "optimizer"),
        .init("training.run_interpretations", .bool, .bool(true), "H2O's interpretation plots", ignoredBecause: "the run report holds the confusion matrix and per-speaker accuracy"),
        .init("training.save_best_checkpoint", .bool, .bool(false), "keep the best checkpoint",
              ignoredBecause: "best.ckpt (best validation by prediction.metric) is always kept next to the newest checkpoints"),
        .init("training.schedule", .choice(["Cosine", "Constant"]), .string("Cosine"), "learning-rate schedule after warm-up"),
        .init("training.train_validation_data", .bool, .bool(false), "also train on the validation fold (final model)"),
        .init("training.warmup_epochs", .double(0...1000), .double(0), "linear warm-up epochs"),
        .init("training.weight_decay", .double(0...10), .double(0), "AdamW's decoupled weight decay"),
        .init("training.checkpoint_every_steps", .int(0...Int.max), .int(200), "write a checkpoint every this many steps (0 = epoch ends only)"),
        .init("training.keep_checkpoints", .int(1...1000), .int(3), "how many recent checkpoints to keep"),
        .init("training.bucket_megabytes", .double(0...4096), .double(0),
              "gradient all-reduce bucket size in MB; 0: the gradient in about 8 buckets of 0.25-25 MB, which overlap with backward"),
        .init("training.sync_batchnorm", .choice(["auto", "true", "false"]), .string("auto"),
              "synchronise BatchNorm statistics across ranks (auto: when the per-rank batch is below 16)"),
    ]

    public static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
