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
            let classifier = ChunkedClassifier(model: model, melBins: melBins, cropFrames: frames, batch: 4,
                                               shortClipPosition: .center, weighting: weighting,
                                               normalization: .no)
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

    func testMeanPowerIsTheMeanOfThePowersAtAnyLevel() {
        for level: Float in [-100, 0, 40] {
            let window: [Float] = [level, level - 10, level - 20, level - 30]
            let expected = pow(10, Double(level) / 10) * (1 + 0.1 + 0.01 + 0.001) / 4
            XCTAssertEqual(ChunkedClassifier.meanPower(window, count: 4), expected, accuracy: expected * 1e-6)
        }
    }
}
