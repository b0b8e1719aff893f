@testable import Train
import Foundation
import XCTest

final class MetricsTests: XCTestCase {
    struct Fixture: Decodable {
        var probabilities: [Float]
        var labels: [Int]
        var speakers: [String]
        var accuracy: Double
        var macro_roc_auc: Double
        var confusion: [[Int]]
        var per_speaker_accuracy: [String: Double]
    }

    /// Values from scikit-learn (scripts/make-metrics-fixture.py), with ties in the scores.
    func testMetricsEqualScikitLearns() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/metrics", withExtension: "json"))
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let metrics = ClassificationMetrics(probabilities: fixture.probabilities, labels: fixture.labels, speakers: fixture.speakers)
        XCTAssertEqual(metrics.clips, 300)
        XCTAssertEqual(metrics.accuracy, fixture.accuracy, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(metrics.macroROCAUC), fixture.macro_roc_auc, accuracy: 1e-9)
        XCTAssertEqual(metrics.confusion, fixture.confusion)
        XCTAssertEqual(metrics.perSpeakerAccuracy.count, fixture.per_speaker_accuracy.count)
        for (speaker, accuracy) in fixture.per_speaker_accuracy {
            XCTAssertEqual(try XCTUnwrap(metrics.perSpeakerAccuracy[speaker]), accuracy, accuracy: 1e-12, speaker)
        }
    }

    func testAUCEdgeCases() {
        XCTAssertEqual(ClassificationMetrics.rocAUC(scores: [0.1, 0.9], positives: [false, true]), 1)
        XCTAssertEqual(ClassificationMetrics.rocAUC(scores: [0.9, 0.1], positives: [false, true]), 0)
        XCTAssertEqual(ClassificationMetrics.rocAUC(scores: [0.5, 0.5, 0.5], positives: [false, true, true]), 0.5)
        XCTAssertNil(ClassificationMetrics.rocAUC(scores: [0.5, 0.2], positives: [true, true]))
    }
}
