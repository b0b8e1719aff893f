import Augment
import Datasets
import NN
@testable import Train
import XCTest

final class ChunkedClassifierTests: XCTestCase {
    /// A 2-chunk clip: a loud first chunk (a word) and a silent second one (its tail, 60 dB down).
    /// With energy weighting the clip's probabilities are the word chunk's (within its 1e-6 weight share);
    /// with equal weighting the plain mean of both.
    func testEnergyWeightingKeepsTheSilentTailFromDilutingTheWord() throws {
        let melBins = 16, frames = 8
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 4, seed: 7)
        var rng = Xoshiro256(seed: 1)
        let clip = (0..<(melBins * 2 * frames)).map { i -> Float in
            (i % (2 * frames)) < frames ? Float(-10 + 10 * rng.nextGaussian()) : -70
        }
        var perChunk: [[Float]] = []
        func classify(_ weighting: ChunkedClassifier.ChunkWeighting) throws -> [Float] {
            var plan = InferencePlan()
            plan.weighting = weighting
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 4, plan: plan)
            perChunk = []
            return try clip.withUnsafeBufferPointer { values in
                try classifier.classify(count: 1, clip: { _ in (values.baseAddress!, 2 * frames, -70) }) { _, _, p in
                    perChunk.append(Array(p))
                }
            }
        }
        let energy = try classify(.energy)
        XCTAssertEqual(perChunk.count, 2)
        XCTAssertGreaterThan(zip(perChunk[0], perChunk[1]).map { abs($0 - $1) }.max()!, 1e-3, "the chunks must disagree")
        for k in 0..<10 { XCTAssertEqual(energy[k], perChunk[0][k], accuracy: 1e-4) }
        let equal = try classify(.equal)
        for k in 0..<10 { XCTAssertEqual(equal[k], (perChunk[0][k] + perChunk[1][k]) / 2, accuracy: 1e-6) }
    }

    /// Adapting BatchNorm to clips re-fits the running statistics alone, the same way each time. Inputs
    /// scaled by 3 (zero padding stays zero, so every convolution output scales by 3 too) mislead the
    /// model; adapted to them, it gives what it gave the unscaled clips: the statistics absorb the change.
    func testAdaptingBatchNormRefitsStatisticsAloneAndAbsorbsAScaledInput() throws {
        let melBins = 16, frames = 8, count = 12
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 4, seed: 7)
        var rng = Xoshiro256(seed: 5)
        let clips = (0..<count).map { _ in (0..<(melBins * frames)).map { _ in Float(rng.nextGaussian()) } }
        let scaled = clips.map { $0.map { 3 * $0 } }
        let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 4, plan: InferencePlan())
        func run(_ data: [[Float]], adapt: Bool) throws -> [Float] {
            let flat = Array(data.joined()), plane = melBins * frames
            return try flat.withUnsafeBufferPointer { values in
                let features = { (i: Int) -> ChunkedClassifier.ClipFeatures in (values.baseAddress! + i * plane, frames, 0) }
                if adapt { try classifier.adaptBatchNorm(count: count, clip: features) }
                return try classifier.classify(count: count, clip: features)
            }
        }
        let weights = Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount))
        let asTrained = try run(clips, adapt: true)
        let statistics = Array(UnsafeBufferPointer(start: model.buffers, count: model.bufferCount))
        XCTAssertEqual(try run(clips, adapt: true), asTrained, "adapting again to the same clips changes nothing")
        XCTAssertEqual(Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount)), weights)
        let unadapted = try run(scaled, adapt: false)
        let adapted = try run(scaled, adapt: true)
        XCTAssertNotEqual(Array(UnsafeBufferPointer(start: model.buffers, count: model.bufferCount)), statistics)
        let gapBefore = zip(unadapted, asTrained).map { abs($0 - $1) }.max()!, gapAfter = zip(adapted, asTrained).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(gapBefore, 0.05, "the scaled clips must mislead the unadapted model")
        XCTAssertLessThan(gapAfter, 1e-3)
    }

    func testMeanEntropyGradientMatchesFiniteDifferences() {
        var rng = Xoshiro256(seed: 9)
        let rows = 3, classes = ChunkedClassifier.classes
        var logits = (0..<(rows * classes)).map { _ in Float(3 * rng.nextGaussian()) }
        func meanEntropy() -> Double {
            var probabilities = [Float](repeating: 0, count: classes), total = 0.0
            for row in 0..<rows {
                ChunkedClassifier.softmax(logits.withUnsafeBufferPointer { $0.baseAddress! + row * classes }, into: &probabilities)
                total -= probabilities.reduce(0.0) { $0 + Double($1) * log(Double($1)) }
            }
            return total / Double(rows)
        }
        var gradient = [Float](repeating: 0, count: logits.count)
        ChunkedClassifier.meanEntropyGradient(logits: logits, rows: rows, into: &gradient)
        for i in logits.indices {
            let kept = logits[i], step: Float = 1e-2
            logits[i] = kept + step
            let above = meanEntropy()
            logits[i] = kept - step
            let below = meanEntropy()
            logits[i] = kept
            XCTAssertEqual(Double(gradient[i]), (above - below) / Double(2 * step), accuracy: 2e-3, "logit \(i)")
        }
    }

    /// TENT moves BatchNorm's scales and shifts alone, the same way each time, and leaves the model surer of
    /// the clips it adapted to than re-fitting the statistics alone does.
    func testAdaptingByEntropyMovesOnlyBatchNormAndLowersTheEntropy() throws {
        let melBins = 16, frames = 8, count = 24
        var rng = Xoshiro256(seed: 6)
        let flat = (0..<(count * melBins * frames)).map { _ in Float(rng.nextGaussian()) }
        func adapted(epochs: Int) throws -> (weights: [Float], probabilities: [Float], ranges: [Range<Int>]) {
            let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 4, seed: 7)
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 4, plan: InferencePlan())
            let probabilities = try flat.withUnsafeBufferPointer { values in
                let features = { (i: Int) -> ChunkedClassifier.ClipFeatures in (values.baseAddress! + i * melBins * frames, frames, 0) }
                try classifier.adaptByEntropy(count: count, clip: features, epochs: epochs, learningRate: 1e-2)
                try classifier.adaptBatchNorm(count: count, clip: features)
                return try classifier.classify(count: count, clip: features)
            }
            return (Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount)), probabilities,
                    model.batchNormParameterRanges)
        }
        func meanEntropy(_ p: [Float]) -> Double { -p.reduce(0.0) { $0 + ($1 > 0 ? Double($1) * log(Double($1)) : 0) } / Double(count) }
        let statisticsOnly = try adapted(epochs: 0), tent = try adapted(epochs: 4)
        XCTAssertEqual(try adapted(epochs: 4).weights, tent.weights, "deterministic")
        let normalised = Set(tent.ranges.flatMap { Array($0) })
        var moved = 0
        for i in tent.weights.indices {
            if normalised.contains(i) {
                if tent.weights[i] != statisticsOnly.weights[i] { moved += 1 }
            } else {
                XCTAssertEqual(tent.weights[i].bitPattern, statisticsOnly.weights[i].bitPattern, "weight \(i) is not BatchNorm's")
            }
        }
        XCTAssertGreaterThan(moved, normalised.count / 2, "BatchNorm's scales and shifts move")
        XCTAssertLessThan(meanEntropy(tent.probabilities), meanEntropy(statisticsOnly.probabilities) - 0.03)
    }

    /// A pass over more chunks than `maxChunksPerPass` reads that many (a large site costs what a small one
    /// does); a pass over fewer reads them all.
    func testEntropyPassesReadAtMostTheirChunkBudget() throws {
        let melBins = 16, frames = 8, count = 24
        var rng = Xoshiro256(seed: 8)
        let flat = (0..<(count * melBins * frames)).map { _ in Float(rng.nextGaussian()) }
        func adapt(epochs: Int, budget: Int) throws -> (steps: Int, weights: [Float]) {
            let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 4, seed: 7)
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 4, plan: InferencePlan())
            let steps = try flat.withUnsafeBufferPointer { values in
                try classifier.adaptByEntropy(count: count, clip: { (values.baseAddress! + $0 * melBins * frames, frames, 0) },
                                              epochs: epochs, learningRate: 1e-2, maxChunksPerPass: budget)
            }
            return (steps, Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount)))
        }
        XCTAssertEqual(try adapt(epochs: 3, budget: 100).steps, 3 * 6, "24 chunks in batches of 4, under the budget")
        XCTAssertEqual(try adapt(epochs: 3, budget: 24).weights, try adapt(epochs: 3, budget: 100).weights, "a budget of all is no budget")
        XCTAssertEqual(try adapt(epochs: 3, budget: 6).steps, 3 * 2, "6 chunks a pass: a batch of 4 and one of 2")
    }

    func testMeanPowerIsTheMeanOfThePowersAtAnyLevel() {
        for level: Float in [-100, 0, 40] {
            let window: [Float] = [level, level - 10, level - 20, level - 30]
            let expected = pow(10, Double(level) / 10) * (1 + 0.1 + 0.01 + 0.001) / 4
            XCTAssertEqual(ChunkedClassifier.meanPower(window, count: 4), expected, accuracy: expected * 1e-6)
        }
    }

    /// Test-time variants: a clip classified with shifts and warps is the energy-weighted mean of its
    /// variants' probabilities, the plain chunk's own reported once.
    func testTestTimeVariantsAreAveragedIn() throws {
        let melBins = 16, frames = 8
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 8, seed: 7)
        var rng = Xoshiro256(seed: 2)
        let clip = (0..<(melBins * 5)).map { _ in Float(-20 + 10 * rng.nextGaussian()) }  // 5 frames: a short clip
        func classify(shift: Int, warp: Double) throws -> ([Float], Int) {
            var plan = InferencePlan()
            plan.shiftFrames = shift
            plan.warp = warp
            plan.weighting = .equal
            var reported = 0
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 3, plan: plan)
            let result = try clip.withUnsafeBufferPointer { values in
                try classifier.classify(count: 1, clip: { _ in (values.baseAddress!, 5, -60) }) { _, _, _ in reported += 1 }
            }
            return (result, reported)
        }
        let (plain, plainReports) = try classify(shift: 0, warp: 0)
        let (augmented, reports) = try classify(shift: 1, warp: 0.2)
        XCTAssertEqual(plainReports, 1)
        XCTAssertEqual(reports, 1, "one chunk, reported once")
        XCTAssertEqual(augmented.reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertGreaterThan(zip(plain, augmented).map { abs($0 - $1) }.max()!, 1e-5, "the variants must count")
        // The mean of five separately classified variants.
        var mean = [Float](repeating: 0, count: 10)
        for shift in [0, -1, 1] {
            var plan = InferencePlan()
            plan.weighting = .equal
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 3, plan: plan)
            let offset = 1 + shift  // centred: (8 − 5) / 2 = 1
            var shifted = [Float](repeating: -60, count: melBins * 8)
            for m in 0..<melBins { for t in 0..<5 { shifted[m * 8 + offset + t] = clip[m * 5 + t] } }
            let p = try shifted.withUnsafeBufferPointer { values in
                try classifier.classify(count: 1, clip: { _ in (values.baseAddress!, 8, -60) })
            }
            for k in 0..<10 { mean[k] += p[k] / 5 }
        }
        for factor in [0.8, 1.2] {
            var warped = [Float](repeating: -60, count: melBins * 8), scratch = warped
            for m in 0..<melBins { for t in 0..<5 { warped[m * 8 + 1 + t] = clip[m * 5 + t] } }
            SpeakerAugmentation.resample(&warped, melBins: melBins, frames: 8, scratch: &scratch, alongTime: false, factor: factor)
            var plan = InferencePlan()
            plan.weighting = .equal
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 3, plan: plan)
            let p = try warped.withUnsafeBufferPointer { values in
                try classifier.classify(count: 1, clip: { _ in (values.baseAddress!, 8, -60) })
            }
            for k in 0..<10 { mean[k] += p[k] / 5 }
        }
        for k in 0..<10 { XCTAssertEqual(augmented[k], mean[k], accuracy: 1e-5) }
    }

    /// With `PerClip`, a warped test-time variant is standardised as training standardises a warped crop: a
    /// short clip's copied frames, after the warp, at mean 0 and standard deviation 1 (the clip's statistics
    /// moved by what the warp did), not by the unwarped clip's statistics.
    func testWarpedVariantsAreStandardisedAsTrainingStandardisesAWarpedCrop() throws {
        let melBins = 16, frames = 8, clipFrames = 5, offset = 1  // centred: (8 − 5) / 2
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 8, seed: 11)
        var rng = Xoshiro256(seed: 4)
        // Loud low bands, quiet high ones: warping the mel axis moves the clip's mean and spread.
        let clip = (0..<(melBins * clipFrames)).map { i in Float(i / clipFrames < 8 ? -10 : -45) + Float(3 * rng.nextGaussian()) }
        var plan = InferencePlan()
        plan.warp = 0.2
        plan.weighting = .equal
        plan.normalization = .perClip
        let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 3, plan: plan)
        let classified = try clip.withUnsafeBufferPointer { values in
            try classifier.classify(count: 1, clip: { _ in (values.baseAddress!, clipFrames, -60) })
        }
        var expected = [Float](repeating: 0, count: 10), probabilities = expected
        for factor in [1.0, 0.8, 1.2] {
            var window = [Float](repeating: -60, count: melBins * frames), scratch = window
            for m in 0..<melBins { for t in 0..<clipFrames { window[m * frames + offset + t] = clip[m * clipFrames + t] } }
            if factor != 1 {
                SpeakerAugmentation.resample(&window, melBins: melBins, frames: frames, scratch: &scratch, alongTime: false, factor: factor)
            }
            let copied = (0..<melBins).flatMap { m in (offset..<(offset + clipFrames)).map { Double(window[m * frames + $0]) } }
            let mean = copied.reduce(0, +) / Double(copied.count)
            let deviation = (copied.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(copied.count)).squareRoot()
            let standardised = window.map { Float((Double($0) - mean) / deviation) }
            ChunkedClassifier.softmax(try model.forward(input: standardised, batch: 1, training: false), into: &probabilities)
            for k in 0..<10 { expected[k] += probabilities[k] / 3 }
        }
        for k in 0..<10 { XCTAssertEqual(classified[k], expected[k], accuracy: 1e-5) }
    }

    /// Every `audio.short_clip_position`: inference classifies a short clip placed exactly where training
    /// (no augmentation) puts it, so a model meets at inference the placement it learnt.
    func testInferencePlacesAShortClipAsTrainingDoes() throws {
        let melBins = 16, frames = 16, clipFrames = 7
        let model = try ResNet(arch: .resnet18, width: 4, inputHeight: melBins, inputWidth: frames, maxBatch: 1, seed: 3)
        var rng = Xoshiro256(seed: 5)
        // A word whose loud part is late in the clip, so the three positions differ.
        let clip = (0..<(melBins * clipFrames)).map { i in Float((i % clipFrames) >= 5 ? -5 : -50) + Float(rng.nextGaussian()) }
        var offsets = Set<Int>()
        for position in LogMelCrop.ShortClipPosition.allCases {
            var crop = [Float](repeating: .nan, count: melBins * frames), scratch = crop
            var cropRng = SpeakerAugmentation.generator(seed: 1, epoch: 0, position: 0)
            TrainingCrop(melBins: melBins, frames: frames, shortClipPosition: position, timeShiftFrames: 0,
                         augmentation: SpeakerAugmentation(), normalization: .perClip)
                .make(clip: clip, clipFrames: clipFrames, silence: -60, start: 0, rng: &cropRng, scratch: &scratch, into: &crop)
            offsets.insert(position.offset(clip: clip, melBins: melBins, clipFrames: clipFrames, frames: frames))
            var expected = [Float](repeating: 0, count: 10)
            ChunkedClassifier.softmax(try model.forward(input: crop, batch: 1, training: false), into: &expected)
            var plan = InferencePlan()
            plan.shortClipPosition = position
            plan.normalization = .perClip
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 1, plan: plan)
            let classified = try clip.withUnsafeBufferPointer { values in
                try classifier.classify(count: 1, clip: { _ in (values.baseAddress!, clipFrames, -60) })
            }
            // Within a few ulps, not bitwise: the classifier sums weight·p and divides by the weight.
            for k in 0..<10 { XCTAssertEqual(classified[k], expected[k], accuracy: 1e-6, "\(position)") }
        }
        XCTAssertEqual(offsets, [0, 4, 2], "Start, Center, Energy (the loud frames 5 and 6 centred)")
    }
}
