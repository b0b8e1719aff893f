import Audio
@testable import Augment
import Datasets
import Foundation
import XCTest

/// `augmentation.noise_folder`: real WAVs through the feature cache, their windows added at the drawn SNR.
final class RecordedNoiseTests: XCTestCase {
    let settings = AudioSettings()
    let frames = 44

    /// A word-like crop: −80 dB floor with a louder band in the middle frames.
    func wordCrop() -> [Float] {
        (0..<(settings.melBins * frames)).map { i in
            let m = i / frames, t = i % frames
            return (15..<30).contains(t) ? Float(-40 + m / 8) : -80
        }
    }

    func testAWindowHasMeanPowerOneAndLoopsARecordingShorterThanTheCrop() throws {
        let noise = try noiseRecordings(self)
        let melBins = settings.melBins
        let hum = try XCTUnwrap(noise.usable.first { noise.cache.frames(ofClip: $0) < frames })
        var seenHum = false
        for position in 0..<40 {
            var rng = SpeakerAugmentation.generator(seed: 5, epoch: 0, position: position)
            var window = [Float](repeating: .nan, count: melBins * frames)
            noise.unitPowerWindow(melBins: melBins, frames: frames, rng: &rng, into: &window)
            let mean = window.reduce(0.0) { $0 + Double($1) } / Double(window.count)
            // The window's sum in Double of Float powers scaled by one Float factor: a few Float roundings.
            XCTAssertEqual(mean, 1, accuracy: 1e-5)
            var again = SpeakerAugmentation.generator(seed: 5, epoch: 0, position: position)
            var repeated = window
            noise.unitPowerWindow(melBins: melBins, frames: frames, rng: &again, into: &repeated)
            XCTAssertEqual(window.map(\.bitPattern), repeated.map(\.bitPattern), "a window is a function of the generator")
            // The hum's 120 Hz sits in the lowest bands: its windows repeat with the recording's length.
            let low = (0..<frames).map { window[2 * frames + $0] }, high = (0..<frames).map { window[95 * frames + $0] }
            if low.reduce(0, +) > high.reduce(0, +) {
                seenHum = true
                let period = noise.cache.frames(ofClip: hum)
                for t in period..<frames { XCTAssertEqual(window[2 * frames + t], window[2 * frames + t - period]) }
            }
        }
        XCTAssertTrue(seenHum, "40 draws never took the hum")
    }

    /// The added power is the drawn SNR below the crop's mean power, and it has the recording's spectrum,
    /// not white noise's: a hum lifts the low bands of the word's silence, never the high ones.
    func testRecordedNoiseIsAddedAtTheSNRWithItsOwnSpectrum() throws {
        let noise = try noiseRecordings(self)
        let melBins = settings.melBins, count = melBins * frames
        let toPower = { (dB: Float) in Double(pow(10, dB / 10)) }
        let before = wordCrop(), cropPower = before.reduce(0.0) { $0 + toPower($1) } / Double(count)
        var humWindows = 0
        for position in 0..<40 {
            var rng = SpeakerAugmentation.generator(seed: 2, epoch: 1, position: position)
            var window = [Float](repeating: 0, count: count)
            noise.unitPowerWindow(melBins: melBins, frames: frames, rng: &rng, into: &window)
            var crop = before, scratch = before
            var unused = SplitMix64(seed: 0)
            SpeakerAugmentation.addNoise(&crop, count: count, snrDecibels: 12, scratch: &scratch, recording: window, rng: &unused)
            let added = zip(crop, before).reduce(0.0) { $0 + toPower($1.0) - toPower($1.1) } / Double(count)
            // Float exp/log round trips of each cell (≈1e-6 relative of the crop's power, which is 16× the
            // noise's at 12 dB) bound the added power's error near 2e-5 relative: 1e-4 dB, far inside 0.01.
            XCTAssertEqual(10 * log10(added / cropPower), -12, accuracy: 0.01)
            for (i, value) in crop.enumerated() {
                XCTAssertEqual(Double(value), 10 * log10(toPower(before[i]) + Double(window[i]) * cropPower * pow(10, -1.2)),
                               accuracy: 1e-3)
            }
            if window[2 * frames] > window[95 * frames] {
                humWindows += 1
                XCTAssertGreaterThan(crop[2 * frames] - before[2 * frames], 20, "the hum lifts the silence's low bands")
                XCTAssertLessThan(crop[95 * frames] - before[95 * frames], 1, "and leaves its high bands")
            }
        }
        XCTAssertGreaterThan(humWindows, 0)
    }

    /// With the recordings set, a crop's noise comes from them, still a function of (seed, epoch, position).
    func testAugmentationWithRecordedNoiseIsDeterministicAndNotTheGeneratedNoise() throws {
        var generated = SpeakerAugmentation()
        generated.noiseProbability = 1
        var recorded = generated
        recorded.recordedNoise = try noiseRecordings(self)
        func augmented(_ augmentation: SpeakerAugmentation, position: Int) -> [Float] {
            var crop = wordCrop(), scratch = [Float](repeating: 0, count: 2 * crop.count)
            var rng = SpeakerAugmentation.generator(seed: 1, epoch: 0, position: position)
            augmentation.applyVoiceAndChannel(&crop, melBins: settings.melBins, frames: frames, scratch: &scratch, rng: &rng)
            return crop
        }
        XCTAssertEqual(augmented(recorded, position: 3).map(\.bitPattern), augmented(recorded, position: 3).map(\.bitPattern))
        XCTAssertNotEqual(augmented(recorded, position: 3), augmented(recorded, position: 4))
        XCTAssertNotEqual(augmented(recorded, position: 3), augmented(generated, position: 3))
        XCTAssertTrue(augmented(recorded, position: 3).allSatisfy(\.isFinite))
    }
}

/// Two recordings: a low hum (120 Hz and its third harmonic, 0.25 s: shorter than a crop) and a high
/// whistle (6 kHz, 2 s, around mel band 95), in a folder of their own, through the feature cache.
func noiseRecordings(_ test: XCTestCase, settings: AudioSettings = AudioSettings()) throws -> RecordedNoise {
    let root = FileManager.default.temporaryDirectory.path + "/digits-dist-noise-\(UUID().uuidString)"
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: root + "/noise/hum", withIntermediateDirectories: true)
    let rate = 16_000
    let hum = (0..<(rate / 4)).map { i -> Float in
        let t = Double(i) / Double(rate)
        return Float(0.3 * sin(2 * .pi * 120 * t) + 0.1 * sin(2 * .pi * 360 * t))
    }
    let whistle = (0..<(2 * rate)).map { Float(0.2 * sin(2 * .pi * 6_000 * Double($0) / Double(rate))) }
    try AudioFile.writeWAV(path: root + "/noise/hum/hum.wav", samples: hum, sampleRate: rate)
    try AudioFile.writeWAV(path: root + "/noise/whistle.wav", samples: whistle, sampleRate: rate)
    let dataset = try Dataset.loadRecordings(folder: root + "/noise")
    return try RecordedNoise(cache: FeatureCache.open(dataset: dataset, settings: settings, directory: root + "/cache"))
}
