import Datasets
import XCTest

final class ShortClipPositionTests: XCTestCase {
    func testCentredClipsHaveSilenceOnBothSidesAndLongOnesFillTheWindow() {
        let clip: [Float] = [1, 2, 3, 4, 5, 6]  // 2 mel bins × 3 frames
        var window = [Float](repeating: .nan, count: 2 * 7)
        let offset = LogMelCrop.ShortClipPosition.center.offset(clipFrames: 3, frames: 7)
        XCTAssertEqual(offset, 2)
        LogMelCrop.copy(from: clip, melBins: 2, clipFrames: 3, startFrame: 0, offset: offset, frames: 7, padding: -9, into: &window)
        XCTAssertEqual(window, [-9, -9, 1, 2, 3, -9, -9, -9, -9, 4, 5, 6, -9, -9])
        XCTAssertEqual(LogMelCrop.ShortClipPosition.start.offset(clipFrames: 3, frames: 7), 0)
        XCTAssertEqual(LogMelCrop.ShortClipPosition.center.offset(clipFrames: 9, frames: 7), 0)
        // An offset past the window clips the clip, never writes outside the window.
        LogMelCrop.copy(from: clip, melBins: 2, clipFrames: 3, startFrame: 1, offset: 6, frames: 7, padding: 0, into: &window)
        XCTAssertEqual(window, [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 5])
    }
}
