@testable import Augment
import Datasets
import XCTest

final class SpeakerAugmentationTests: XCTestCase {
    let melBins = 16, frames = 12

    /// A crop like a word in silence: −80 dB floor, a louder band in the middle.
    func wordCrop() -> [Float] {
        (0..<(melBins * frames)).map { i in
            let m = i / frames, t = i % frames
            return (4..<9).contains(t) ? Float(-30 + m) : -80
        }
    }

    func augmented(_ augmentation: SpeakerAugmentation, seed: UInt64 = 1, epoch: Int = 0, position: Int = 0) -> [Float] {
        var crop = wordCrop()
        var scratch = [Float](repeating: 0, count: crop.count)
        var rng = SpeakerAugmentation.generator(seed: seed, epoch: epoch, position: position)
        augmentation.applyVoiceAndChannel(&crop, melBins: melBins, frames: frames, scratch: &scratch, rng: &rng)
        augmentation.applyMasks(&crop, melBins: melBins, frames: frames, rng: &rng)
        return crop
    }

    static var everything: SpeakerAugmentation {
        var all = SpeakerAugmentation()
        all.tempo = 0.15
        all.vocalTract = 0.15
        all.equalizer = 8
        all.gain = 6
        all.reverbProbability = 0.5
        all.noiseProbability = 1
        all.frequencyMasks = 2
        all.frequencyMaskBins = 3
        all.timeMasks = 2
        all.timeMaskFrames = 2
        return all
    }

    func testNothingOnLeavesTheCropAsItIs() {
        XCTAssertTrue(SpeakerAugmentation().isIdentity)
        XCTAssertEqual(augmented(SpeakerAugmentation()), wordCrop())
        XCTAssertFalse(Self.everything.isIdentity)
    }

    func testSameSeedEpochAndPositionGiveTheSameCropAndAnyOtherChangesIt() {
        let all = Self.everything
        let first = augmented(all)
        XCTAssertEqual(first.map(\.bitPattern), augmented(all).map(\.bitPattern))
        XCTAssertNotEqual(first, augmented(all, seed: 2))
        XCTAssertNotEqual(first, augmented(all, epoch: 1))
        XCTAssertNotEqual(first, augmented(all, position: 1))
        XCTAssertTrue(first.allSatisfy(\.isFinite))
    }

    func testGainMovesEveryValueByOneAmountWithinItsBound() {
        var gain = SpeakerAugmentation()
        gain.gain = 6
        var shifts: [Float] = []
        for position in 0..<50 {
            let out = augmented(gain, position: position), shift = out[0] - wordCrop()[0]
            XCTAssertLessThanOrEqual(abs(shift), 6)
            for (a, b) in zip(out, wordCrop()) { XCTAssertEqual(a - b, shift, accuracy: 1e-4) }
            shifts.append(shift)
        }
        XCTAssertGreaterThan(shifts.max()! - shifts.min()!, 6, "draws cover the range")
    }

    func testEqualizerLiftsEachBandByOneAmountAlongTimeWithinItsBoundAndColoursTheBands() {
        var equalizer = SpeakerAugmentation()
        equalizer.equalizer = 8
        var spreads: [Float] = []
        for position in 0..<50 {
            let out = augmented(equalizer, position: position)
            var lifts: [Float] = []
            for m in 0..<melBins {
                let lift = out[m * frames] - wordCrop()[m * frames]
                XCTAssertLessThanOrEqual(abs(lift), 8 + 1e-4)
                for t in 0..<frames { XCTAssertEqual(out[m * frames + t] - wordCrop()[m * frames + t], lift, accuracy: 1e-4) }
                lifts.append(lift)
            }
            spreads.append(lifts.max()! - lifts.min()!)
        }
        XCTAssertGreaterThan(spreads.max()!, 4, "some draws colour the bands by several dB")
        XCTAssertGreaterThan(spreads.filter { $0 > 0.5 }.count, 45, "nearly every draw colours them")
        // The curve reaches its bound only where every cosine is at ±1 with its weight's sign.
        XCTAssertEqual(SpeakerAugmentation.equalizerCurve(SIMD3(1, 1, 1), band: 0, of: 100_000), 1, accuracy: 1e-3)
    }

    func testTempoAndVocalTractInterpolateWithinTheCropsRangeAndMoveTheWord() {
        for alongTime in [true, false] {
            var warp = SpeakerAugmentation()
            if alongTime { warp.tempo = 0.3 } else { warp.vocalTract = 0.3 }
            var moved = 0
            for position in 0..<20 {
                let out = augmented(warp, position: position)
                XCTAssertTrue(out.allSatisfy { (-80 ... -15).contains($0) }, "interpolation stays inside the values")
                if out != wordCrop() { moved += 1 }
            }
            XCTAssertGreaterThan(moved, 15, alongTime ? "tempo" : "vocal tract")
        }
        // A factor of exactly 1 is the identity; 2 along time repeats every frame.
        var crop = wordCrop(), scratch = crop
        SpeakerAugmentation.resample(&crop, melBins: melBins, frames: frames, scratch: &scratch, alongTime: true, factor: 1)
        XCTAssertEqual(crop, wordCrop())
        SpeakerAugmentation.resample(&crop, melBins: melBins, frames: frames, scratch: &scratch, alongTime: true, factor: 2)
        for m in 0..<melBins { for t in 0..<frames where t % 2 == 0 { XCTAssertEqual(crop[m * frames + t], wordCrop()[m * frames + t / 2]) } }
    }

    func testReverberationEchoesAFrameWithItsDecayAndEnergy() {
        // One frame at 0 dB in −200 dB silence: every later frame is its echo c·a^k.
        let frames = 40, a = 0.8, below = 6.0
        var crop = [Float](repeating: -200, count: 2 * frames)
        crop[3] = 0
        crop[frames + 3] = 0
        SpeakerAugmentation.addReverberation(&crop, melBins: 2, frames: frames, decayPerFrame: a, tailDecibelsBelowDirect: below)
        XCTAssertEqual(crop[3], 0, accuracy: 1e-5, "the direct sound is kept")
        XCTAssertLessThan(crop[2], -198, "nothing before it but the silence's own echo")
        for k in 1..<30 { XCTAssertEqual(crop[3 + k] - crop[3 + k + 1], Float(-10 * log10(a)), accuracy: 1e-3) }
        let tail = (4..<frames).map { pow(10, Double(crop[$0]) / 10) }.reduce(0, +)
        XCTAssertEqual(10 * log10(tail), -below, accuracy: 0.05, "the tail's energy, 6 dB below the frame's")
        XCTAssertEqual(Array(crop[0..<frames]), Array(crop[frames...]), "every band alike")
        var reverb = SpeakerAugmentation()
        reverb.reverbProbability = 1
        var changed = 0
        for position in 0..<20 {
            let out = augmented(reverb, position: position)
            XCTAssertTrue(zip(out, wordCrop()).allSatisfy { $0 >= $1 - 1e-4 }, "reverberation only adds power")
            if out != wordCrop() { changed += 1 }
        }
        XCTAssertEqual(changed, 20)
    }

    func testNoiseOnlyAddsPowerAndLiftsSilenceMoreThanTheWord() {
        var crop = wordCrop()
        var rng = SplitMix64(seed: 3)
        var scratch = crop
        SpeakerAugmentation.addNoise(&crop, count: crop.count, snrDecibels: 10, scratch: &scratch, rng: &rng)
        var silenceLift = 0.0, wordLift = 0.0
        for (i, (after, before)) in zip(crop, wordCrop()).enumerated() {
            XCTAssertGreaterThanOrEqual(after, before - 1e-4, "adding power never lowers a cell")
            if (4..<9).contains(i % frames) { wordLift += Double(after - before) } else { silenceLift += Double(after - before) }
        }
        XCTAssertGreaterThan(silenceLift / Double(7 * melBins), 10 * wordLift / Double(5 * melBins))
        // At an SNR of 10 dB the noise floor sits about 10 dB below the crop's mean power.
        let power = wordCrop().map { pow(10, Double($0) / 10) }.reduce(0, +) / Double(crop.count)
        let floor = crop.enumerated().filter { !(4..<9).contains($0.offset % frames) }.map { pow(10, Double($0.element) / 10) }
        XCTAssertEqual(10 * log10(floor.reduce(0, +) / Double(floor.count) / power), -10, accuracy: 2)
        // The noise cells follow Exp(1): the table's quantiles have its mean 1 and variance 1.
        let q = SpeakerAugmentation.exponentialQuantiles.map(Double.init)
        let mean = q.reduce(0, +) / Double(q.count)
        XCTAssertEqual(mean, 1, accuracy: 0.01)
        XCTAssertEqual(q.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(q.count), 1, accuracy: 0.05)
    }

    func testMasksCoverAtMostTheirWidthsWithTheCropsMean() {
        var masks = SpeakerAugmentation()
        masks.frequencyMasks = 2
        masks.frequencyMaskBins = 3
        masks.timeMasks = 1
        masks.timeMaskFrames = 2
        let mean = wordCrop().reduce(0, +) / Float(melBins * frames)
        for position in 0..<30 {
            let out = augmented(masks, position: position)
            let maskedRows = (0..<melBins).filter { m in (0..<frames).allSatisfy { out[m * frames + $0] == mean } }
            let maskedColumns = (0..<frames).filter { t in (0..<melBins).allSatisfy { out[$0 * frames + t] == mean } }
            XCTAssertLessThanOrEqual(maskedRows.count, 6)
            XCTAssertLessThanOrEqual(maskedColumns.count, 2)
            for (i, value) in out.enumerated() where value != wordCrop()[i] {
                XCTAssertTrue(maskedRows.contains(i / frames) || maskedColumns.contains(i % frames) || value == mean)
            }
        }
    }

    func testSmoothedAndMixedTargetsSumToOne() {
        var targets: [Float] = [0, 0, 0.3, 0, 0, 0, 0, 0.7, 0, 0] + [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        LabelSmoothing.apply(&targets, rows: 2, classes: 10, epsilon: 0.1)
        for row in 0..<2 { XCTAssertEqual(targets[(row * 10)..<(row * 10 + 10)].reduce(0, +), 1, accuracy: 1e-6) }
        XCTAssertEqual(targets[11], 0.91, accuracy: 1e-6)
        XCTAssertEqual(targets[0], 0.01, accuracy: 1e-6)
    }
}

final class TrainingCropTests: XCTestCase {
    /// A short clip (3 frames of 7) moves by at most ± the time shift around the centre and never leaves
    /// the window; the same generator gives the same crop.
    func testTimeShiftStaysWithinItsBoundAndTheWindow() {
        let clip: [Float] = [1, 2, 3]  // one mel band
        let crop = TrainingCrop(melBins: 1, frames: 7, shortClipPosition: .center, timeShiftFrames: 1,
                                augmentation: SpeakerAugmentation(), normalization: .no)
        var offsets = Set<Int>()
        for position in 0..<100 {
            var out = [Float](repeating: .nan, count: 7), again = out, scratch = out
            var rng = SpeakerAugmentation.generator(seed: 4, epoch: 0, position: position)
            crop.make(clip: clip, clipFrames: 3, silence: -9, start: 0, rng: &rng, scratch: &scratch, into: &out)
            var repeatRng = SpeakerAugmentation.generator(seed: 4, epoch: 0, position: position)
            crop.make(clip: clip, clipFrames: 3, silence: -9, start: 0, rng: &repeatRng, scratch: &scratch, into: &again)
            XCTAssertEqual(out, again)
            let offset = try! XCTUnwrap(out.firstIndex(of: 1))
            XCTAssertEqual(Array(out[offset..<(offset + 3)]), clip)
            XCTAssertEqual(out.filter { $0 == -9 }.count, 4, "the rest is silence")
            offsets.insert(offset)
        }
        XCTAssertEqual(offsets, [1, 2, 3], "centre 2, ± 1")
    }

    /// Trimming silences at most `trimFrames` (and a quarter of the clip) at each end of a short clip, the
    /// rest as it was; ends are drawn apart; a clip longer than the crop is never trimmed.
    func testTrimSilencesOnlyTheClipsEdgesWithinItsBounds() {
        let clip = (1...12).map(Float.init)  // one mel band, 12 frames in a crop of 16 (offset 2)
        var crop = TrainingCrop(melBins: 1, frames: 16, shortClipPosition: .center, timeShiftFrames: 0,
                                augmentation: SpeakerAugmentation(), normalization: .no)
        crop.trimFrames = 5
        var heads = Set<Int>(), tails = Set<Int>()
        for position in 0..<200 {
            var out = [Float](repeating: .nan, count: 16), scratch = out
            var rng = SpeakerAugmentation.generator(seed: 2, epoch: 1, position: position)
            crop.make(clip: clip, clipFrames: 12, silence: -9, start: 0, rng: &rng, scratch: &scratch, into: &out)
            let word = Array(out[2..<14])
            let head = word.prefix { $0 == -9 }.count, tail = word.reversed().prefix { $0 == -9 }.count
            XCTAssertLessThanOrEqual(max(head, tail), 3, "a quarter of 12 frames")
            XCTAssertEqual(Array(word[head..<(12 - tail)]), Array(clip[head..<(12 - tail)]))
            XCTAssertEqual(Array(out[0..<2]) + Array(out[14...]), [-9, -9, -9, -9])
            heads.insert(head)
            tails.insert(tail)
        }
        XCTAssertEqual(heads, [0, 1, 2, 3])
        XCTAssertEqual(tails, [0, 1, 2, 3])
        let long = (1...20).map(Float.init)
        var out = [Float](repeating: .nan, count: 16), scratch = out
        var rng = SpeakerAugmentation.generator(seed: 2, epoch: 1, position: 0)
        crop.make(clip: long, clipFrames: 20, silence: -9, start: 3, rng: &rng, scratch: &scratch, into: &out)
        XCTAssertEqual(out, Array(long[3..<19]), "a window of a long clip keeps every frame")
    }

    /// Gain moves every value of the crop by one amount: normalised by the clip's statistics moved by what
    /// the gain did, the crop is the clean crop normalised (inference sees no gain). Without that shift,
    /// PerBand/PerClip would leave the gain in the crop. Short clips (centred) and long clips (a window).
    func testNormalisationAfterAGainIsTheCleanCropsNormalisation() {
        let melBins = 4, frames = 8
        var gainOnly = SpeakerAugmentation()
        gainOnly.gain = 6
        for clipFrames in [5, 13] {
            let clip = (0..<(melBins * clipFrames)).map { i in Float((i * 37) % 23) - 60 + Float(i / clipFrames) * 4 }
            let start = clipFrames > frames ? 2 : 0
            for normalization in [SpectrogramNormalization.perClip, .perBand] {
                let clean = TrainingCrop(melBins: melBins, frames: frames, shortClipPosition: .center, timeShiftFrames: 0,
                                         augmentation: SpeakerAugmentation(), normalization: normalization)
                var withGain = clean
                withGain.augmentation = gainOnly
                var expected = [Float](repeating: 0, count: melBins * frames), out = expected, scratch = expected
                var rng = SpeakerAugmentation.generator(seed: 3, epoch: 0, position: 0)
                clean.make(clip: clip, clipFrames: clipFrames, silence: -80, start: start, rng: &rng,
                           scratch: &scratch, into: &expected)
                rng = SpeakerAugmentation.generator(seed: 3, epoch: 0, position: 0)
                withGain.make(clip: clip, clipFrames: clipFrames, silence: -80, start: start, rng: &rng,
                              scratch: &scratch, into: &out)
                // Inside the copied frames: the clean values up to Float rounding: a few roundings of values
                // |x| ≤ 80 dB (≈ 4·80·6e-8 = 2e-5) times the scale 1/std (std > 1 here) stay below 1e-4.
                let copied = LogMelCrop.CopiedFrames(clipFrames: clipFrames, startFrame: start,
                                                     offset: clipFrames > frames ? 0 : (frames - clipFrames) / 2, frames: frames)
                for m in 0..<melBins {
                    for t in copied.offset..<(copied.offset + copied.count) {
                        XCTAssertEqual(out[m * frames + t], expected[m * frames + t], accuracy: 1e-4, "\(normalization) clip \(clipFrames) m \(m) t \(t)")
                    }
                }
                // Control: the same gained crop normalised by the clip's unmoved statistics keeps the gain.
                var unmoved = expected
                LogMelCrop.copy(from: clip, melBins: melBins, clipFrames: clipFrames, startFrame: copied.startFrame,
                                offset: copied.offset, frames: frames, padding: -80, into: &unmoved)
                rng = SpeakerAugmentation.generator(seed: 3, epoch: 0, position: 0)
                gainOnly.applyVoiceAndChannel(&unmoved, melBins: melBins, frames: frames, scratch: &scratch, rng: &rng)
                normalization.apply(&unmoved, melBins: melBins, frames: frames, clip: clip, clipFrames: clipFrames)
                XCTAssertGreaterThan(zip(unmoved, expected).map { abs($0 - $1) }.max()!, 0.05, "\(normalization)")
            }
        }
    }
}
