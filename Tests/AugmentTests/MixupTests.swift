@testable import Augment
import Datasets
import XCTest

final class MixupTests: XCTestCase {
    func mixup(_ alpha: Double) throws -> Mixup { Mixup(concentration: alpha, iterations: 1, probability: 1) }

    func testRatiosFollowBetaOfTheConcentration() throws {
        for alpha in [0.4, 1.0, 4.0] {
            let sampler = try mixup(alpha)
            var rng = SplitMix64(seed: 3)
            let draws = (0..<20_000).map { _ in Double(sampler.ratio(&rng)) }
            let mean = draws.reduce(0, +) / Double(draws.count)
            let variance = draws.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(draws.count)
            XCTAssertEqual(mean, 0.5, accuracy: 0.01, "α = \(alpha)")
            XCTAssertEqual(variance, 1 / (4 * (2 * alpha + 1)), accuracy: 0.005, "α = \(alpha): Var Beta(α, α) = 1/(4(2α+1))")
            XCTAssertTrue(draws.allSatisfy { (0...1).contains($0) })
        }
    }

    func testMixingAddsPowersWeightedBySquaredRatios() {
        var x: [Float] = [-20, -40, -80]
        let partner: [Float] = [-20, -10, -80]
        Mixup.mix(&x, with: partner, count: 3, ratio: 0.5)
        // Equal levels: 10·log10(0.25 + 0.25) = −3.01 dB; a partner 30 dB louder dominates.
        XCTAssertEqual(x[0], -20 - 3.0103, accuracy: 1e-3)
        XCTAssertEqual(x[1], Float(10 * log10(0.25 * 1e-4 + 0.25 * 1e-1)), accuracy: 1e-3)
        XCTAssertEqual(x[2], -80 - 3.0103, accuracy: 1e-3)
        var unchanged: [Float] = [1, 2, 3]
        Mixup.mix(&unchanged, with: partner, count: 3, ratio: 1)
        XCTAssertEqual(unchanged, [1, 2, 3])
        Mixup.mix(&unchanged, with: partner, count: 3, ratio: 0)
        XCTAssertEqual(unchanged, partner)
    }

    func testBatchChoiceFollowsTheProbability() throws {
        let half = Mixup(concentration: 1, iterations: 1, probability: 0.5)
        let mixed = (0..<2000).filter { half.mixes(seed: 1, epoch: 0, batch: $0) }.count
        XCTAssertEqual(Double(mixed) / 2000, 0.5, accuracy: 0.04)
        // The choice is drawn per epoch (and seed), not fixed per batch index.
        let epochTwo = (0..<2000).filter { half.mixes(seed: 1, epoch: 2, batch: $0) }
        XCTAssertNotEqual(epochTwo, (0..<2000).filter { half.mixes(seed: 1, epoch: 0, batch: $0) })
        XCTAssertNotEqual(epochTwo, (0..<2000).filter { half.mixes(seed: 2, epoch: 2, batch: $0) })
    }
}
