import Audio
import Augment
import Datasets
import Dist
import Foundation
import NN

/// Trains one fold run on every rank of `communicator`: each rank computes its share of every global
/// batch, gradients are summed across ranks in buckets while backward runs, and every rank applies the
/// same AdamW update, so all ranks hold the same weights after every step.
public final class Trainer {
    public let recipe: TrainingRecipe
    public let run: FoldRun
    let dataset: Dataset
    let cache: FeatureCache
    let communicator: Communicator
    let model: ResNet
    let optimizer: AdamW
    /// `training.ema_decay`'s averages of the parameters and of the BatchNorm statistics; nil when off.
    let averages: (parameters: WeightAverage, buffers: WeightAverage)?
    let bucketer: GradientBucketer
    let outputs: RunOutputs?
    /// Largest share of a global batch any rank gets.
    let maxLocalBatch: Int
    let evaluationBatch: Int
    let input: UnsafeMutablePointer<Float>   // [maxBatch][1][melBins][cropFrames]
    let dlogits: UnsafeMutablePointer<Float> // [maxBatch][classes]
    let targets: UnsafeMutablePointer<Float>  // [maxBatch][classes]: one-hot, or blended by mixup
    let partnerCrop: UnsafeMutablePointer<Float>  // [melBins][cropFrames] scratch for mixup
    let augmentationScratch: UnsafeMutablePointer<Float>  // [2][melBins][cropFrames]
    let classifier: ChunkedClassifier
    /// Contiguous runs of parameters and whether they train at the differential learning rate; the
    /// learning rates are rewritten in place every step (no allocation).
    var parameterGroups: [(range: Range<Int>, learningRate: Float)] = []
    var differentialGroup: [Bool] = []
    /// Set by the backward hook, which cannot throw.
    var communicationError: Error?
    /// Whether this backward's gradients are final and go to the all-reduce as they appear.
    var reducesDuringBackward = false
    /// The step's mean loss and stop request, all-reduced together in one call.
    let lossAndStop: UnsafeMutablePointer<Float>

    /// Identify the run in its checkpoints, so a resume can check it continues the same run.
    let configYAML: String
    let datasetKey: String

    public private(set) var step = 0
    public private(set) var lastMetrics: ClassificationMetrics?
    var bestMetrics: ClassificationMetrics?

    public init(recipe: TrainingRecipe, run: FoldRun, dataset: Dataset, cache: FeatureCache,
                communicator: Communicator, outputs: RunOutputs?, configYAML: String) throws {
        self.recipe = recipe
        self.configYAML = configYAML
        self.datasetKey = recipe.dataKey(of: cache)
        self.run = run
        self.dataset = dataset
        self.cache = cache
        self.communicator = communicator
        self.outputs = outputs
        maxLocalBatch = (recipe.globalBatch + communicator.size - 1) / communicator.size
        evaluationBatch = max(maxLocalBatch, 32)
        model = try ResNet(arch: recipe.architecture, width: recipe.width, inputHeight: recipe.audio.melBins,
                           inputWidth: recipe.cropFrames, maxBatch: evaluationBatch, classes: 10,
                           dropout: Float(recipe.dropout), subSpectralBands: recipe.subSpectralBands, seed: recipe.seed)
        model.precision = recipe.precision.training
        optimizer = try AdamW(parameterCount: model.parameterCount, weightDecay: recipe.weightDecay)
        averages = recipe.weightAverageDecay > 0
            ? (try WeightAverage(count: model.parameterCount, decay: recipe.weightAverageDecay),
               try WeightAverage(count: model.bufferCount, decay: recipe.weightAverageDecay))
            : nil
        bucketer = try GradientBucketer(model: model, communicator: communicator,
                                        bucketBytes: recipe.bucketBytes ?? GradientBucketer.automaticBucketBytes(count: model.parameterCount),
                                        mode: recipe.bucketMode)
        input = .allocate(capacity: evaluationBatch * recipe.audio.melBins * recipe.cropFrames)
        dlogits = .allocate(capacity: evaluationBatch * 10)
        targets = .allocate(capacity: evaluationBatch * 10)
        partnerCrop = .allocate(capacity: recipe.audio.melBins * recipe.cropFrames)
        augmentationScratch = .allocate(capacity: 2 * recipe.audio.melBins * recipe.cropFrames)
        lossAndStop = .allocate(capacity: 2)
        classifier = ChunkedClassifier(model: model, melBins: recipe.audio.melBins, cropFrames: recipe.cropFrames,
                                       batch: evaluationBatch, plan: recipe.inference)
        if !recipe.differentialLayers.isEmpty {
            for slot in model.parameterSlots {
                let differential = try Self.isDifferential(slot.name, layers: recipe.differentialLayers)
                if let last = differentialGroup.last, last == differential {
                    parameterGroups[parameterGroups.count - 1].range = parameterGroups.last!.range.lowerBound..<slot.range.upperBound
                } else {
                    parameterGroups.append((slot.range, 0))
                    differentialGroup.append(differential)
                }
            }
        }

        if let path = recipe.pretrainedPath, communicator.rank == 0 {
            let report = try PretrainedWeights.load(path: path, into: model)
            Log.info("\(path): loaded \(report.loaded) tensors; \(report.summedToOneChannel.joined(separator: ", ")) summed from RGB "
                + "to one channel; \(report.replaced.joined(separator: ", ")) start fresh for the 10 digits")
        }
        // Same seed gives the same weights everywhere already; the broadcast makes it a guarantee (and
        // carries pretrained weights read by rank 0).
        try communicator.broadcast(model.parameters, count: model.parameterCount)
        try communicator.broadcast(model.buffers, count: model.bufferCount)
        averages?.parameters.reset(to: model.parameters)
        averages?.buffers.reset(to: model.buffers)
        if communicator.size > 1 {
            model.gradientsReady = { [unowned self] range in
                guard reducesDuringBackward else { return }
                do { try bucketer.gradientsReady(from: range.lowerBound) } catch { communicationError = error }
            }
        }
        if recipe.syncBatchNorm(ranks: communicator.size) {
            model.batchNormReduce = { [communicator] values, count in
                do { try communicator.allReduceSum(values, count: count) } catch {
                    Log.error("synchronised BatchNorm: \(error)")
                    communicator.abort(code: 1)
                }
            }
        }
    }

    deinit {
        input.deallocate()
        dlogits.deallocate()
        targets.deallocate()
        partnerCrop.deallocate()
        augmentationScratch.deallocate()
        lossAndStop.deallocate()
    }

    /// How a call to `train` ended.
    public enum Outcome {
        /// Every epoch ran; the last validation's metrics (on rank 0).
        case finished(ClassificationMetrics?)
        /// A stop signal arrived; a checkpoint of the last completed step was written.
        case stopped
    }

    var batchesPerEpoch: Int {
        recipe.dropLastBatch ? run.trainingClips.count / recipe.globalBatch
            : (run.trainingClips.count + recipe.globalBatch - 1) / recipe.globalBatch
    }

    /// Trains every epoch from `resume` (or from the start), validating when due and writing
    /// checkpoints to `store` (rank 0's; nil elsewhere) every `checkpointEverySteps` steps, at each
    /// epoch end and when a stop signal arrives.
    public func train(store: CheckpointStore?, resume: Checkpoint?) throws -> Outcome {
        let stepsPerEpoch = batchesPerEpoch / recipe.gradientAccumulation
        guard stepsPerEpoch >= 1 else {
            throw ConfigError("training.batch_size = \(recipe.globalBatch) × grad_accumulation \(recipe.gradientAccumulation) "
                + "exceeds the \(run.trainingClips.count) training clips of this run")
        }
        let totalSteps = stepsPerEpoch * recipe.epochs
        let schedule = try recipe.schedule(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        let runName = run.fold.map { "fold \($0)" } ?? "run"
        var epochLoss = 0.0
        if let resume {
            try restore(resume)
            epochLoss = resume.metadata.epochLossSum
            Log.info("\(runName): resuming at step \(step) of \(totalSteps) (epoch \(step / stepsPerEpoch + 1))")
        } else {
            Log.info("\(runName): \(run.trainingClips.count) training clips, \(run.validationClips.count) validation clips "
                + "(speakers \(run.validationSpeakers.joined(separator: ","))), \(stepsPerEpoch) steps per epoch")
        }
        var throughput = Throughput()
        var order: EpochOrder?
        while step < totalSteps {
            let epoch = step / stepsPerEpoch, stepInEpoch = step % stepsPerEpoch
            if order?.epoch != epoch {
                order = EpochOrder(trainingClips: run.trainingClips, globalBatch: recipe.globalBatch,
                                   dropLast: recipe.dropLastBatch, seed: recipe.seed, epoch: epoch)
            }
            let started = Date()
            let learningRate = schedule(step)
            let (loss, stopRequested) = try trainStep(order: order!, firstBatch: stepInEpoch * recipe.gradientAccumulation,
                                                      epoch: epoch, learningRate: learningRate)
            epochLoss += Double(loss)
            throughput.add(samples: recipe.globalBatch * recipe.gradientAccumulation, seconds: Date().timeIntervalSince(started))
            try outputs?.recordStep(fold: run.fold, epoch: epoch, step: step, loss: loss, learningRate: learningRate)
            step += 1
            if Log.showsProgress || Log.shouldReport(step: step, of: totalSteps) {
                let remaining = Double(totalSteps - step) * throughput.secondsPerStep
                let status = String(format: "%@ epoch %d/%d step %d/%d loss %.4f lr %.2e %.0f samples/s ETA %@",
                                    runName, epoch + 1, recipe.epochs, step, totalSteps, loss, learningRate,
                                    throughput.samplesPerSecond, Log.duration(remaining))
                Log.progress(done: step, total: totalSteps, status: status)
                if Log.shouldReport(step: step, of: totalSteps) { Log.info(status) }
            }
            let epochEnds = step % stepsPerEpoch == 0
            if epochEnds && recipe.evaluates(afterEpoch: epoch) {
                let metrics = try evaluate(clips: run.validationClips)
                let trainMetrics = recipe.calculateTrainMetric ? try evaluate(clips: run.trainingClips) : nil
                if let metrics {
                    Log.info(String(format: "%@ epoch %d: validation accuracy %.4f, macro ROC-AUC %.4f (%d clips)",
                                    runName, epoch + 1, metrics.accuracy, metrics.macroROCAUC ?? .nan, metrics.clips)
                        + (trainMetrics.map { String(format: "; training accuracy %.4f", $0.accuracy) } ?? ""))
                    try outputs?.recordEpoch(fold: run.fold, epoch: epoch, step: step, trainLoss: epochLoss / Double(stepsPerEpoch),
                                             learningRate: learningRate, samplesPerSecond: throughput.samplesPerSecond,
                                             metrics: metrics, trainMetrics: trainMetrics)
                    lastMetrics = metrics
                    if recipe.isBetter(metrics, than: bestMetrics) {
                        bestMetrics = metrics
                        try store?.saveBest(checkpoint())
                    }
                }
            }
            if epochEnds { epochLoss = 0 }
            let due = epochEnds || stopRequested
                || (recipe.checkpointEverySteps > 0 && step % recipe.checkpointEverySteps == 0)
            if due && step < totalSteps {
                try synchronisedCheckpoint(store: store, epochLossSum: epochLoss)
            }
            if stopRequested && step < totalSteps {
                Log.info("\(runName): stopped by a signal after step \(step); resume with --resume")
                return .stopped
            }
        }
        return .finished(lastMetrics)
    }

    /// Rank 0 writes a step checkpoint while the others wait, so no rank runs ahead of a checkpoint;
    /// a failed write (e.g. a full disk) stops every rank with rank 0's message.
    func synchronisedCheckpoint(store: CheckpointStore?, epochLossSum: Double) throws {
        var failure: Error?
        if let store {
            do { try store.save(checkpoint(epochLossSum: epochLossSum)) } catch { failure = error }
        }
        let failed = try communicator.broadcast(failure == nil ? 0 : 1)
        if let failure { throw failure }
        if failed != 0 { throw TrainingError("rank 0 could not write a checkpoint") }
    }

    /// Loads weights, BatchNorm statistics, optimizer moments and the step from a checkpoint of this run.
    func restore(_ checkpoint: Checkpoint) throws {
        for (name, destination, count) in stateSections {
            guard let values = checkpoint.section(name), values.count == count else {
                throw TrainingError("checkpoint section \(name) is missing or has the wrong size for this model")
            }
            destination.update(from: values, count: count)
        }
        optimizer.step = checkpoint.metadata.optimizerStep
        step = checkpoint.metadata.step
        bestMetrics = checkpoint.metadata.bestMetrics
        lastMetrics = checkpoint.metadata.metrics
    }

    /// One optimizer step over `gradientAccumulation` global batches; returns the global mean loss and
    /// whether any rank has been asked to stop (agreed on by all ranks in the same all-reduce).
    func trainStep(order: EpochOrder, firstBatch: Int, epoch: Int, learningRate: Float) throws -> (Float, Bool) {
        let ranks = communicator.size
        var weightedLoss: Float = 0
        for micro in 0..<recipe.gradientAccumulation {
            let global = order.batch(firstBatch + micro)
            let local = EpochOrder.shard(global, rank: communicator.rank, ranks: ranks)
            try fillTrainingBatch(order: order, positions: local, epoch: epoch, batch: firstBatch + micro)
            let logits = try model.forward(input: input, batch: local.count, training: true)
            let loss = try model.timed(.loss) {
                try recipe.loss(logits, targets, local.count, dlogits)
            }
            // The loss is a mean over this rank's share; rescale so the ranks' gradients sum to the
            // gradient of the mean over the global batch (and over the accumulated batches).
            let share = Float(local.count) / Float(global.count * recipe.gradientAccumulation)
            for i in 0..<(local.count * 10) { dlogits[i] *= share }
            weightedLoss += loss * share
            // Only the last accumulated batch completes the gradients; its backward starts the buckets.
            reducesDuringBackward = micro == recipe.gradientAccumulation - 1
            model.backward(dlogits: dlogits)
        }
        lossAndStop[0] = weightedLoss
        lossAndStop[1] = StopSignal.requested ? 1 : 0
        if ranks > 1 {
            try bucketer.finish(scale: 1)
            if let communicationError { throw communicationError }
            try communicator.allReduceSum(lossAndStop, count: 2)
            if !recipe.syncBatchNorm(ranks: ranks) {
                try Self.averageBatchNormStatistics(of: model, totalWeight: Float(ranks), communicator: communicator)
            }
        }
        weightedLoss = lossAndStop[0]
        guard weightedLoss.isFinite else {
            throw TrainingError("the loss became \(weightedLoss) at step \(step) (epoch \(epoch + 1)); stopping without saving NaN weights")
        }
        if recipe.gradientClip > 0 {
            _ = try clipGradientNorm(model.gradients, count: model.parameterCount, maxNorm: Float(recipe.gradientClip))
        }
        try model.timed(.optimizer) {
            if parameterGroups.isEmpty {
                try optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: learningRate)
            } else {
                let differentialRate = learningRate * Float(recipe.differentialLearningRate / recipe.learningRate)
                for g in parameterGroups.indices {
                    parameterGroups[g].learningRate = differentialGroup[g] ? differentialRate : learningRate
                }
                try optimizer.update(parameters: model.parameters, gradients: model.gradients, groups: parameterGroups)
            }
        }
        model.zeroGradients()
        if let averages {
            averages.parameters.update(model.parameters, step: optimizer.step)
            averages.buffers.update(model.buffers, step: optimizer.step)
        }
        return (weightedLoss, lossAndStop[1] > 0)
    }

    /// Per-rank BatchNorm leaves each rank with running statistics of its own shards (after a training step,
    /// or after adapting to its shard of the scored clips); averaged over the ranks, every rank holds the same
    /// ones, so the sharded validation scores exactly the model rank 0 saves, and a resume (every rank starting
    /// from the saved statistics) continues exactly. Each rank's statistics count `weight` times in the mean
    /// (its clip count when adapting; 1 in training), `totalWeight` the ranks' sum. In place: a training step
    /// allocates nothing.
    static func averageBatchNormStatistics(of model: ResNet, weight: Float = 1, totalWeight: Float,
                                           communicator: Communicator) throws {
        guard totalWeight > 0 else { return }
        if weight != 1 { for i in 0..<model.bufferCount { model.buffers[i] *= weight } }
        try communicator.allReduceSum(model.buffers, count: model.bufferCount)
        let scale = 1 / totalWeight
        for i in 0..<model.bufferCount { model.buffers[i] *= scale }
    }

    /// Whether tensor `name` belongs to one of the listed model parts.
    static func isDifferential(_ name: String, layers: [String]) throws -> Bool {
        let parts = ["backbone", "head", "conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
        for layer in layers where !parts.contains(layer) {
            throw ConfigError("training.differential_learning_rate_layers: '\(layer)' is not a model part (\(parts.joined(separator: ", ")))")
        }
        let part = name.hasPrefix("fc.") ? "fc" : String(name.prefix { $0 != "." })
        return layers.contains(part) || layers.contains(part == "fc" ? "head" : "backbone")
    }

    /// Copies the crops and one-hot targets of `positions` (of the epoch order) into `input` and
    /// `targets`, mixing them when mixup picks this global batch.
    func fillTrainingBatch(order: EpochOrder, positions: Range<Int>, epoch: Int, batch: Int) throws {
        let plane = recipe.audio.melBins * recipe.cropFrames
        let mixup = recipe.mixup.flatMap { $0.mixes(seed: recipe.seed, epoch: epoch, batch: batch) ? $0 : nil }
        for (slot, position) in positions.enumerated() {
            let sample = input + slot * plane, target = targets + slot * 10
            cropForTraining(clip: order.clips[position], epoch: epoch, position: position, into: sample)
            target.update(repeating: 0, count: 10)
            target[dataset.clips[order.clips[position]].label] = 1
            guard let mixup else { continue }
            var rng = Mixup.generator(seed: recipe.seed, epoch: epoch, position: position)
            for round in 0..<mixup.iterations {
                let partner = run.trainingClips[rng.nextInt(below: run.trainingClips.count)]
                cropForTraining(clip: partner, epoch: epoch, position: order.clips.count * (round + 1) + position, into: partnerCrop)
                let ratio = mixup.ratio(&rng)
                Mixup.mix(sample, with: partnerCrop, count: plane, ratio: ratio)
                for k in 0..<10 { target[k] *= ratio }
                target[dataset.clips[partner].label] += 1 - ratio
            }
        }
        if recipe.labelSmoothing > 0 {
            LabelSmoothing.apply(targets, rows: positions.count, classes: 10, epsilon: recipe.labelSmoothing)
        }
    }

    /// The training crop of `clip` for this `epoch` and `position` (`TrainingCrop`).
    func cropForTraining(clip: Int, epoch: Int, position: Int, into out: UnsafeMutablePointer<Float>) {
        let clipFrames = cache.frames(ofClip: clip)
        let start = EpochOrder.cropStart(seed: recipe.seed, epoch: epoch, position: position, clipFrames: clipFrames,
                                         cropFrames: recipe.cropFrames)
        var rng = SpeakerAugmentation.generator(seed: recipe.seed, epoch: epoch, position: position)
        recipe.crop.make(clip: cache.features(ofClip: clip).baseAddress!, clipFrames: clipFrames,
                         silence: cache.silenceLevel(ofClip: clip), start: start, rng: &rng, scratch: augmentationScratch,
                         into: out)
    }

    /// Validates on `clips`, sharded over ranks (chunked as `ChunkedClassifier`); rank 0 gathers every
    /// clip's probabilities and returns the metrics, other ranks return nil.
    /// With `training.ema_decay`, the averaged weights are what is validated.
    public func evaluate(clips: [Int]) throws -> ClassificationMetrics? {
        model.precision = recipe.precision.inference
        swapAverages()
        defer {
            swapAverages()
            model.precision = recipe.precision.training
        }
        return try Self.evaluate(clips: clips, dataset: dataset, cache: cache, classifiers: [classifier], communicator: communicator)
    }

    /// Exchanges the model's weights and BatchNorm statistics with their averages (and back on a second call).
    private func swapAverages() {
        averages?.parameters.swap(with: model.parameters)
        averages?.buffers.swap(with: model.buffers)
    }

    /// Also serves `digits-dist evaluate`: several classifiers (a k-fold run's models) are averaged.
    public static func evaluate(clips: [Int], dataset: Dataset, cache: FeatureCache, classifiers: [ChunkedClassifier],
                                communicator: Communicator, adaptBatchNorm: Bool = false,
                                adaptEpochs: Int = 0) throws -> ClassificationMetrics? {
        let mine = stride(from: communicator.rank, to: clips.count, by: communicator.size).map { clips[$0] }
        var probabilities = [Float](repeating: 0, count: mine.count * ChunkedClassifier.classes)
        let features = { (list: [Int]) in { (i: Int) -> ChunkedClassifier.ClipFeatures in
            let values = cache.features(ofClip: list[i])
            return (values.baseAddress!, cache.frames(ofClip: list[i]), cache.silenceLevel(ofClip: list[i]))
        } }
        let clip = features(mine)
        for classifier in classifiers {
            if adaptBatchNorm {
                // Every rank adapts the weights on all the clips, so they do not depend on the rank count.
                try classifier.adaptByEntropy(count: clips.count, clip: features(clips), epochs: adaptEpochs)
                try classifier.adaptBatchNorm(count: mine.count, clip: clip)
                if communicator.size > 1 {
                    try averageBatchNormStatistics(of: classifier.model, weight: Float(mine.count), totalWeight: Float(clips.count),
                                                   communicator: communicator)
                }
            }
            let own = try classifier.classify(count: mine.count, clip: clip)
            for i in probabilities.indices { probabilities[i] += own[i] / Float(classifiers.count) }
        }
        let gatheredProbabilities = try communicator.gatherv(probabilities)
        let gatheredClips = try communicator.gatherv(mine.map { Int64($0) })
        guard communicator.rank == 0 else { return nil }
        let allClips = gatheredClips.flatMap { $0 }.map { Int($0) }
        return ClassificationMetrics(probabilities: gatheredProbabilities.flatMap { $0 },
                                     labels: allClips.map { dataset.clips[$0].label },
                                     speakers: allClips.map { dataset.clips[$0].speaker })
    }

    /// The run's state after `step` steps: weights, BatchNorm statistics, optimizer moments and position.
    public func checkpoint(epochLossSum: Double = 0) -> Checkpoint {
        let metadata = CheckpointMetadata(
            architecture: recipe.architecture.rawValue, width: recipe.width, classes: 10, dropout: recipe.dropout,
            inputHeight: recipe.audio.melBins, inputWidth: recipe.cropFrames, audio: recipe.audio, config: configYAML,
            fold: run.fold, validationSpeakers: run.validationSpeakers, seed: recipe.seed, step: step,
            optimizerStep: optimizer.step, epochLossSum: epochLossSum, datasetKey: datasetKey,
            ranks: communicator.size, precision: recipe.precision.training.rawValue, metrics: lastMetrics,
            bestMetrics: bestMetrics)
        return Checkpoint(metadata: metadata, sections: stateSections.map { name, values, count in
            (name, Array(UnsafeBufferPointer(start: values, count: count)))
        })
    }

    /// The buffers a checkpoint holds and a resume restores: weights, BatchNorm statistics, AdamW's moments
    /// and, with `training.ema_decay`, the averages of the first two (which inference loads, `TrainedModel`).
    var stateSections: [(name: String, values: UnsafeMutablePointer<Float>, count: Int)] {
        var sections = [("parameters", model.parameters, model.parameterCount), ("buffers", model.buffers, model.bufferCount),
                        ("adam.m", optimizer.firstMoment, model.parameterCount),
                        ("adam.v", optimizer.secondMoment, model.parameterCount)]
        if let averages {
            sections += [("ema.parameters", averages.parameters.values, model.parameterCount),
                         ("ema.buffers", averages.buffers.values, model.bufferCount)]
        }
        return sections
    }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Samples per second over a sliding window of recent steps.
struct Throughput {
    var samples = 0
    var seconds = 0.0
    var steps = 0

    mutating func add(samples: Int, seconds: Double) {
        if steps >= 50 { self = Throughput() }
        self.samples += samples
        self.seconds += seconds
        steps += 1
    }

    var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }
    var secondsPerStep: Double { steps > 0 ? seconds / Double(steps) : 0 }
}

extension GradientBucketer {
    /// The bucketer of `model`'s gradient buffer, cut at its parameter tensors (training and `bench train`).
    public convenience init(model: ResNet, communicator: Communicator, bucketBytes: Int, mode: Mode) throws {
        try self.init(communicator: communicator, gradients: model.gradients, count: model.parameterCount,
                      tensorOffsets: model.parameterSlots.map(\.offset), bucketBytes: bucketBytes, mode: mode)
    }
}
