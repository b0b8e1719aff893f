import Foundation

/// Validation metrics of one evaluation: computed on rank 0 from every clip's class probabilities.
public struct ClassificationMetrics: Codable, Sendable, Equatable {
    public var clips: Int
    public var accuracy: Double
    /// Mean over digits of one-vs-rest ROC-AUC (sklearn's roc_auc_score(multi_class="ovr", average="macro")),
    /// over the digits that occur with both outcomes; nil when none does.
    public var macroROCAUC: Double?
    /// confusion[true][predicted]
    public var confusion: [[Int]]
    public var perSpeakerAccuracy: [String: Double]
    public var perDigitAccuracy: [Double?]

    enum CodingKeys: String, CodingKey {
        case clips, accuracy, confusion
        case macroROCAUC = "macro_roc_auc"
        case perSpeakerAccuracy = "per_speaker_accuracy"
        case perDigitAccuracy = "per_digit_accuracy"
    }

    /// `probabilities` is clips × classes, row-major; the prediction is each row's most probable class
    /// (the first on ties, as numpy's argmax).
    public init(probabilities: [Float], labels: [Int], speakers: [String], classes: Int = 10) {
        let n = labels.count
        precondition(probabilities.count == n * classes && speakers.count == n)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var speakerTotals: [String: (correct: Int, total: Int)] = [:]
        var correct = 0
        for i in 0..<n {
            let row = probabilities[(i * classes)..<((i + 1) * classes)]
            let predicted = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }! - i * classes
            confusion[labels[i]][predicted] += 1
            let hit = predicted == labels[i]
            correct += hit ? 1 : 0
            speakerTotals[speakers[i], default: (0, 0)].correct += hit ? 1 : 0
            speakerTotals[speakers[i], default: (0, 0)].total += 1
        }
        self.clips = n
        self.accuracy = n > 0 ? Double(correct) / Double(n) : 0
        self.confusion = confusion
        self.perSpeakerAccuracy = speakerTotals.mapValues { Double($0.correct) / Double($0.total) }
        self.perDigitAccuracy = (0..<classes).map { c in
            let total = confusion[c].reduce(0, +)
            return total > 0 ? Double(confusion[c][c]) / Double(total) : nil
        }
        let aucs = (0..<classes).compactMap { c in
            Self.rocAUC(scores: (0..<n).map { probabilities[$0 * classes + c] }, positives: labels.map { $0 == c })
        }
        self.macroROCAUC = aucs.isEmpty ? nil : aucs.reduce(0, +) / Double(aucs.count)
    }

    /// Area under the ROC curve = the Mann–Whitney U statistic over positives and negatives, ties
    /// counting one half (average ranks); nil without both positives and negatives.
    public static func rocAUC(scores: [Float], positives: [Bool]) -> Double? {
        let positiveCount = positives.filter { $0 }.count
        let negativeCount = positives.count - positiveCount
        guard positiveCount > 0, negativeCount > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSumOfPositives = 0.0
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
            let averageRank = Double(start + end) / 2 + 1
            for k in start...end where positives[order[k]] { rankSumOfPositives += averageRank }
            start = end + 1
        }
        let u = rankSumOfPositives - Double(positiveCount) * Double(positiveCount + 1) / 2
        return u / (Double(positiveCount) * Double(negativeCount))
    }
}
