import Foundation
@testable import Datasets
import XCTest

final class ShortClipPositionTests: XCTestCase {
    func testCentredClipsHaveSilenceOnBothSidesAndLongOnesFillTheWindow() {
        let clip: [Float] = [1, 2, 3, 4, 5, 6]  // 2 mel bins × 3 frames
        var window = [Float](repeating: .nan, count: 2 * 7)
        let offset = LogMelCrop.ShortClipPosition.center.offset(clip: clip, melBins: 2, clipFrames: 3, frames: 7)
        XCTAssertEqual(offset, 2)
        LogMelCrop.copy(from: clip, melBins: 2, clipFrames: 3, startFrame: 0, offset: offset, frames: 7, padding: -9, into: &window)
        XCTAssertEqual(window, [-9, -9, 1, 2, 3, -9, -9, -9, -9, 4, 5, 6, -9, -9])
        XCTAssertEqual(LogMelCrop.ShortClipPosition.start.offset(clip: clip, melBins: 2, clipFrames: 3, frames: 7), 0)
        XCTAssertEqual(LogMelCrop.ShortClipPosition.center.offset(clip: [Float](repeating: 0, count: 18), melBins: 2,
                                                                  clipFrames: 9, frames: 7), 0)
        // An offset past the window clips the clip, never writes outside the window.
        LogMelCrop.copy(from: clip, melBins: 2, clipFrames: 3, startFrame: 1, offset: 6, frames: 7, padding: 0, into: &window)
        XCTAssertEqual(window, [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 5])
    }

    func testEnergyPlacesTheLoudestPartOfTheClipAtTheMiddleOfTheWindow() {
        // 2 mel bins × 6 frames of silence (−80 dB) with the word in frame 4: its centroid is frame 4's middle
        // (4.5; the silence weighs 10⁻⁸ of it), so it lands on frame 1 + 4 = 5, whose span [5, 6) ends at the
        // middle of a 12-frame window (a centred clip would put it on frame 3 + 4 = 7).
        var clip = [Float](repeating: -80, count: 12)
        clip[4] = 0
        clip[6 + 4] = -3
        let energy = LogMelCrop.ShortClipPosition.energy
        XCTAssertEqual(energy.offset(clip: clip, melBins: 2, clipFrames: 6, frames: 12), 1)
        XCTAssertEqual(LogMelCrop.ShortClipPosition.center.offset(clip: clip, melBins: 2, clipFrames: 6, frames: 12), 3)
        // The word at the clip's very start would need the clip to begin past the room the window has.
        var early = [Float](repeating: -80, count: 12)
        early[0] = 0
        XCTAssertEqual(energy.offset(clip: early, melBins: 2, clipFrames: 6, frames: 8), 2)
        // Even power over the clip, or none at all: the centred place.
        for flat in [[Float](repeating: -20, count: 12), [Float](repeating: -.infinity, count: 12)] {
            XCTAssertEqual(energy.offset(clip: flat, melBins: 2, clipFrames: 6, frames: 11),
                           LogMelCrop.ShortClipPosition.center.offset(clip: flat, melBins: 2, clipFrames: 6, frames: 11))
        }
        // A clip that fills the window starts at the window's start.
        XCTAssertEqual(energy.offset(clip: clip, melBins: 2, clipFrames: 6, frames: 6), 0)
    }
    func testTheCentroidsPowerOfTwoIsWithinItsBoundOfLibm() {
        var worst = 0.0
        for i in 0...126_000 {
            let y = -Float(i) / 1000
            let exact = Foundation.exp2(Double(y))
            worst = max(worst, abs(Double(LogMelCrop.exp2OfNonPositive(y)) - exact) / exact)
        }
        // The polynomial's own error over [0, 1) (1.6·10⁻⁷, from its least-squares fit) plus Horner's roundings
        // (the last two steps each within half an ulp, 2⁻²⁴, of a result near 1; the earlier ones damped by
        // f < 1, together under one more); the fraction and the power of two are exact.
        XCTAssertLessThan(worst, 1.6e-7 + 3 * 0x1p-24)
        XCTAssertEqual(LogMelCrop.exp2OfNonPositive(0), 1, accuracy: 1e-7)
        XCTAssertEqual(LogMelCrop.exp2OfNonPositive(-.infinity), 0, accuracy: 1e-37)
    }

    func testDecibelsOfAPowerAreWithinTheirBoundOfLibmAndInvertTheRelativePower() {
        var worst = 0.0, x = Float.leastNormalMagnitude
        while x < 1e30 {
            worst = max(worst, abs(Double(LogMelCrop.decibels(ofPower: x)) - 10 * Foundation.log10(Double(x))))
            x *= 1.000_37
        }
        // The series' truncation (2·t¹¹/11 at |t| ≤ 0.172: 7·10⁻¹⁰) is nothing beside Float's roundings of a
        // result up to 376 dB in size (an ulp there is 3·10⁻⁵); near 0 dB they are 10⁻⁷.
        XCTAssertLessThan(worst, 1e-4)
        for decibels in stride(from: Float(-100), through: 0, by: 0.37) {
            XCTAssertEqual(LogMelCrop.decibels(ofPower: LogMelCrop.relativePower(decibels: decibels, peak: 0)), decibels,
                           accuracy: 1e-5)
        }
        XCTAssertEqual(LogMelCrop.decibels(ofPower: 1), 0, accuracy: 1e-7)
        XCTAssertEqual(LogMelCrop.decibels(ofPower: 0), LogMelCrop.decibels(ofPower: .leastNormalMagnitude))
    }
}

final class SpectrogramNormalizationTests: XCTestCase {
    /// 2 bands × 4 frames: band 0 loud, band 1 quiet.
    let clip: [Float] = [-10, -20, -10, -20, -60, -70, -60, -70]

    func testPerClipStandardisesTheClipAndScalesAWindowOfItTheSameWay() {
        var whole = clip
        SpectrogramNormalization.perClip.apply(&whole, melBins: 2, frames: 4, clip: clip, clipFrames: 4)
        let mean = whole.reduce(0, +) / 8, variance = whole.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 8
        XCTAssertEqual(mean, 0, accuracy: 1e-5)
        XCTAssertEqual(variance, 1, accuracy: 1e-4)
        // A 2-frame window of the same clip gets the clip's statistics, not its own.
        var window: [Float] = [-10, -20, -60, -70]
        SpectrogramNormalization.perClip.apply(&window, melBins: 2, frames: 2, clip: clip, clipFrames: 4)
        XCTAssertEqual(window, [whole[0], whole[1], whole[4], whole[5]])
    }

    func testPerBandRemovesEachBandsMeanAndNoLeavesTheValues() {
        var whole = clip
        SpectrogramNormalization.perBand.apply(&whole, melBins: 2, frames: 4, clip: clip, clipFrames: 4)
        XCTAssertEqual(whole[0..<4].reduce(0, +), 0, accuracy: 1e-5)
        XCTAssertEqual(whole[4..<8].reduce(0, +), 0, accuracy: 1e-5)
        XCTAssertEqual(Array(whole[0..<4]), Array(whole[4..<8]), "the bands differ only in level")
        var untouched = clip
        SpectrogramNormalization.no.apply(&untouched, melBins: 2, frames: 4, clip: clip, clipFrames: 4)
        XCTAssertEqual(untouched, clip)
        var silence: [Float] = [-80, -80]
        SpectrogramNormalization.perClip.apply(&silence, melBins: 1, frames: 2, clip: [-80, -80], clipFrames: 2)
        XCTAssertEqual(silence, [0, 0], "a constant clip stays finite")
    }
}
