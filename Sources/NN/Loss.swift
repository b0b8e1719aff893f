import Foundation

/// Classification losses over logits [B][classes] against integer labels [B] or target distributions
/// [B][classes] (mixup's soft targets). Each returns the mean loss and overwrites dlogits [B][classes]
/// with its gradient, ready for `ResNet.backward(dlogits:)`.
public enum Loss {
    /// PyTorch's BCEWithLogitsLoss (mean over batch × classes) against one-hot targets made from `labels`:
    ///   ℓ = max(x, 0) − x·y + log(1 + e^(−|x|)),   dℓ/dx = (σ(x) − y) / (B·classes)
    public static func binaryCrossEntropyWithLogits(logits: UnsafePointer<Float>, labels: UnsafePointer<Int>,
                                                    batch: Int, classes: Int,
                                                    dlogits: UnsafeMutablePointer<Float>) throws -> Float {
        try validate(labels: labels, batch: batch, classes: classes)
        return binaryCrossEntropy(logits, batch, classes, dlogits) { b, k in labels[b] == k ? 1 : 0 }
    }

    /// The same against target probabilities y ∈ [0, 1] per class.
    public static func binaryCrossEntropyWithLogits(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                                    batch: Int, classes: Int,
                                                    dlogits: UnsafeMutablePointer<Float>) throws -> Float {
        try validate(batch: batch, classes: classes)
        return binaryCrossEntropy(logits, batch, classes, dlogits) { b, k in targets[b * classes + k] }
    }

    @inline(__always)
    private static func binaryCrossEntropy(_ logits: UnsafePointer<Float>, _ batch: Int, _ classes: Int,
                                           _ dlogits: UnsafeMutablePointer<Float>, target: (Int, Int) -> Float) -> Float {
        let scale = 1 / Float(batch * classes)
        var total = 0.0
        for b in 0..<batch {
            for k in 0..<classes {
                let x = logits[b * classes + k], y = target(b, k)
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
        return softmaxCrossEntropy(logits, batch, classes, dlogits) { b, k in labels[b] == k ? 1 : 0 }
    }

    /// The same against target distributions (rows summing to 1): ℓ = logΣe^x − Σ y·x, dℓ/dx = (softmax(x) − y) / B.
    public static func softmaxCrossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                           batch: Int, classes: Int,
                                           dlogits: UnsafeMutablePointer<Float>) throws -> Float {
        try validate(batch: batch, classes: classes)
        return softmaxCrossEntropy(logits, batch, classes, dlogits) { b, k in targets[b * classes + k] }
    }

    @inline(__always)
    private static func softmaxCrossEntropy(_ logits: UnsafePointer<Float>, _ batch: Int, _ classes: Int,
                                            _ dlogits: UnsafeMutablePointer<Float>, target: (Int, Int) -> Float) -> Float {
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
            var targetLogit: Float = 0
            for k in 0..<classes { targetLogit += target(b, k) * x[k] }
            total += Double(log(sum) + largest - targetLogit)
            for k in 0..<classes { dx[k] = (dx[k] / sum - target(b, k)) / Float(batch) }
        }
        return Float(total / Double(batch))
    }

    private static func validate(batch: Int, classes: Int) throws {
        try require(batch >= 1, "loss batch size", batch, "must be at least 1")
        try require(classes >= 1, "loss class count", classes, "must be at least 1")
    }

    private static func validate(labels: UnsafePointer<Int>, batch: Int, classes: Int) throws {
        try validate(batch: batch, classes: classes)
        for b in 0..<batch where !(0..<classes).contains(labels[b]) {
            throw NNError.labelOutOfRange(sample: b, label: labels[b], classes: classes)
        }
    }
}
