import Foundation
import XCTest
@testable import Audio

/// Files in the bundled Fixtures/ folder (written by scripts/make-librosa-fixtures.py).
func fixturePath(_ name: String) throws -> String {
    let folder = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "Fixtures resource missing")
    return folder.appendingPathComponent(name).path
}

/// The real FSDD recording, read in place from ../shared (repo root = three levels above this file).
func fsddRecordingPath(_ name: String, file: StaticString = #filePath) throws -> String {
    let repoRoot = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let folder = repoRoot.appendingPathComponent("../shared/data/fsdd/recordings").standardized
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw XCTSkip("FSDD recordings not found at \(folder.path)")
    }
    return folder.appendingPathComponent(name).path
}

/// A fresh directory for files a test writes; removed at the end of the test.
func makeTemporaryDirectory(for test: XCTestCase) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("AudioTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url.path
}

/// Deterministic test signal in [-0.9, 0.9]: two tones plus a little pseudo-random noise.
func testSignal(count: Int, sampleRate: Int, seed: UInt64 = 1) -> [Float] {
    var state = seed
    return (0..<count).map { n in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let noise = Double(Int64(bitPattern: state) >> 11) / Double(1 << 52)
        let t = Double(n) / Double(sampleRate)
        return Float(0.5 * sin(2 * .pi * 440 * t) + 0.3 * sin(2 * .pi * 1234.5 * t) + 0.05 * noise)
    }
}

/// Mean and 99th percentile of |a - b| over the entries where `reference` is within `range` dB of its maximum.
func dbDifference(_ values: [Float], reference: [Float], range: Float) -> (mean: Double, p99: Double, max: Double, compared: Int) {
    let ceiling = reference.max() ?? 0
    var diffs: [Double] = []
    for i in reference.indices where reference[i] >= ceiling - range {
        diffs.append(Double(abs(values[i] - reference[i])))
    }
    diffs.sort()
    let p99 = diffs[max(0, Int((0.99 * Double(diffs.count)).rounded(.up)) - 1)]
    return (diffs.reduce(0, +) / Double(diffs.count), p99, diffs.last ?? 0, diffs.count)
}
