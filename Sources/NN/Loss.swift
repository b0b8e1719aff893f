import Foundation

/// Classification losses over logits [B][classes] and integer labels [B]. Each returns the mean loss and
/// overwrites dlogits [B][classes] with its gradient, ready for `ResNet.backward(dlogits:)`.
public enum Loss {
    /// PyTorch's BCEWithLogitsLoss (mean over batch × classes) against one-hot targets made from `labels`:
    ///   ℓ = max(x, 0) − x·y + log(1 + e^(−|x|)),   dℓ/dx = (σ(x) − y) / (B·classes)
    public static func binaryCrossEntropyWithLogits(logits: UnsafePointer<Float>, labels: UnsafePointer<Int>,
                                                    batch: Int, classes: Int,
                                                    dlogits: UnsafeMutablePointer<Float>) throws -> Float {
        try validate(labels: labels, batch: batch, classes: classes)
        let scale = 1 / Float(batch * classes)
        var total = 0.0
        for b in 0..<batch {
            for k in 0..<classes {
                let x = logits[b * classes + k], y: Float = labels[b] == k ? 1 : 0
                total += Double(max(x, 0) - x * y + log1p(exp(-abs(x))))
                dlogits[b * classes + k] = (1 / (1 + exp(-x)) - y) * scale
            }
        }
        return Float(total / Double(batch * classes))
    }

    /// PyTorch's CrossEntropyLoss (mean over the batch) on softmax of the logits:
    ///   ℓ = logΣe^x − x_label,   dℓ/dx = (softmax(x) − onehot) / B
    public static func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int>,
                                           batch: Int, classes: Int,
                                           dlogits: UnsafeMutablePointer<Float>) throws -> Float {
        try validate(labels: labels, batch: batch, classes: classes)
        var total = 0.0
        for b in 0..<batch {
            let x = logits + b * classes, dx = dlogits + b * classes
            var largest = -Float.infinity
            for k in 0..<classes { largest = max(largest, x[k]) }
            var sum: Float = 0
            for k in 0..<classes {
                dx[k] = exp(x[k] - largest)
                sum += dx[k]
            }
            total += Double(log(sum) + largest - x[labels[b]])
            for k in 0..<classes { dx[k] = (dx[k] / sum - (labels[b] == k ? 1 : 0)) / Float(batch) }
        }
        return Float(total / Double(batch))
    }

    private static func validate(labels: UnsafePointer<Int>, batch: Int, classes: Int) throws {
        try require(batch >= 1, "loss batch size", batch, "must be at least 1")
        try require(classes >= 1, "loss class count", classes, "must be at least 1")
        for b in 0..<batch where !(0..<classes).contains(labels[b]) {
            throw NNError.labelOutOfRange(sample: b, label: labels[b], classes: classes)
        }
    }
}
