import Audio
@testable import Augment
import Datasets
import Foundation
import XCTest

/// The training crops of a step allocate nothing either: counted, as the step is, by the malloc shim that
/// scripts/count-step-allocations.sh preloads (without it this test skips). Every augmentation is on, and every
/// short-clip placement takes its turn (Energy's centroid included), with generated and recorded noise.
final class CropAllocationTests: XCTestCase {
    func testMakingAugmentedNormalisedCropsDoesNotAllocate() throws {
        guard let symbol = dlsym(nil, "nn_allocation_count") else {
            throw XCTSkip("run scripts/count-step-allocations.sh to count allocations")
        }
        let allocationCount = unsafeBitCast(symbol, to: (@convention(c) () -> Int).self)
        var augmentation = SpeakerAugmentationTests.everything
        augmentation.noiseProbability = 1
        var settings = AudioSettings()
        settings.melBins = 64
        let recorded = try noiseRecordings(self, settings: settings)
        var crop = TrainingCrop(melBins: 64, frames: 44, shortClipPosition: .center, timeShiftFrames: 3,
                                augmentation: augmentation, normalization: .perClip)
        crop.trimFrames = 3
        let short = 30, long = 90
        let clip = UnsafeMutablePointer<Float>.allocate(capacity: 64 * long)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 64 * 44)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 64 * 44)
        defer { [clip, scratch, out].forEach { $0.deallocate() } }
        for i in 0..<(64 * long) { clip[i] = -70 + Float(i % 53) }
        func crops(epoch: Int) {
            let placements = LogMelCrop.ShortClipPosition.allCases
            crop.shortClipPosition = placements[epoch % placements.count]
            crop.augmentation.recordedNoise = epoch % 2 == 0 ? nil : recorded
            for position in 0..<32 {
                var rng = SpeakerAugmentation.generator(seed: 1, epoch: epoch, position: position)
                let frames = position % 2 == 0 ? short : long
                crop.make(clip: clip, clipFrames: frames, silence: -80, start: frames == long ? position : 0, rng: &rng,
                          scratch: scratch, into: out)
            }
        }
        for epoch in 0...1 { crops(epoch: epoch) }  // warm-up: lazy statics (the noise quantile table)
        let before = allocationCount()
        for epoch in 2...6 { crops(epoch: epoch) }
        let allocations = allocationCount() - before
        print("allocations in 160 augmented crops: \(allocations)")
        XCTAssertEqual(allocations, 0)
    }
}
