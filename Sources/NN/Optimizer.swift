import Foundation

/// torch.optim.AdamW over one flat parameter buffer and its gradient buffer: decoupled weight decay
/// (p ← p·(1 − lr·λ)) followed by the bias-corrected Adam step, computed in the same order as PyTorch.
/// The moments are flat buffers with the parameters' layout, so checkpoints can store them directly.
public final class AdamW {
    public let count: Int
    public let beta1, beta2, epsilon, weightDecay: Double
    /// Number of updates taken; the bias corrections use it.
    public var step = 0
    /// First and second moment estimates, [count] each.
    public let firstMoment, secondMoment: UnsafeMutablePointer<Float>

    public init(parameterCount: Int, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0.01) throws {
        try require(parameterCount >= 1, "AdamW parameter count", parameterCount, "must be at least 1")
        try require((0..<1).contains(beta1), "AdamW beta1", beta1, "must be in [0, 1)")
        try require((0..<1).contains(beta2), "AdamW beta2", beta2, "must be in [0, 1)")
        try require(epsilon > 0, "AdamW epsilon", epsilon, "must be positive")
        try require(weightDecay >= 0, "AdamW weight decay", weightDecay, "must be non-negative")
        count = parameterCount
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoment = .allocate(capacity: count)
        firstMoment.initialize(repeating: 0, count: count)
        secondMoment = .allocate(capacity: count)
        secondMoment.initialize(repeating: 0, count: count)
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    /// One update of all `count` parameters from their gradients.
    public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                       learningRate: Float) throws {
        try require(learningRate > 0 && learningRate.isFinite, "learning rate", learningRate,
                    "must be a positive finite number")
        step += 1
        withComputeThreads {
            apply(parameters: parameters, gradients: gradients, range: 0..<count, learningRate: learningRate)
        }
    }

    /// One update with a learning rate per group of parameters (PyTorch's parameter groups: e.g. a
    /// pretrained backbone at a differential rate); the groups must cover the buffer without overlap.
    public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
                       groups: [(range: Range<Int>, learningRate: Float)]) throws {
        for group in groups {
            try require(group.learningRate > 0 && group.learningRate.isFinite, "learning rate", group.learningRate,
                        "must be a positive finite number")
        }
        try require(groups.reduce(0) { $0 + $1.range.count } == count, "parameter groups", groups.count,
                    "must cover all \(count) parameters")
        step += 1
        withComputeThreads {
            for (range, learningRate) in groups where !range.isEmpty {
                apply(parameters: parameters, gradients: gradients, range: range, learningRate: learningRate)
            }
        }
    }

    /// The AdamW step of `range` at `learningRate`, with the bias corrections of the current `step`; runs
    /// inside the caller's `withComputeThreads`.
    private func apply(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, range: Range<Int>,
                       learningRate: Float) {
        // Scalars in Double like PyTorch's Python floats; the per-element arithmetic in Float like its kernels.
        let lr = Double(learningRate)
        let decay = Float(1 - lr * weightDecay)
        let stepSize = Float(lr / (1 - pow(beta1, Double(step))))
        let correction2Root = Float((1 - pow(beta2, Double(step))).squareRoot())
        let at = range.lowerBound
        let job = AdamWJob(parameters: parameters + at, gradients: gradients + at, firstMoment: firstMoment + at,
                           secondMoment: secondMoment + at, decay: decay, stepSize: stepSize,
                           correction2Root: correction2Root, firstWeight: Float(1 - beta1), beta2: Float(beta2),
                           secondWeight: Float(1 - beta2), epsilon: Float(epsilon))
        parallelChunks(range.count, minimumChunk: 1 << 16, job) { job, lower, upper in
            job.load(as: AdamWJob.self).update(lower..<upper)
        }
    }
}

/// One AdamW update's pointers and per-step scalars, handed to the parallel loop.
private struct AdamWJob {
    let parameters: UnsafeMutablePointer<Float>
    let gradients: UnsafePointer<Float>
    let firstMoment, secondMoment: UnsafeMutablePointer<Float>
    let decay, stepSize, correction2Root, firstWeight, beta2, secondWeight, epsilon: Float

    typealias Lanes = SIMD16<Float>

    /// Sixteen elements at a time: the compiler keeps the scalar loop scalar (its square root and division
    /// form a latency chain), while lane-wise IEEE arithmetic gives exactly the scalar loop's bits.
    /// The tail runs in zero-padded lanes (a zero second moment stays finite: the divisor is ε).
    func update(_ range: Range<Int>) {
        for i in stride(from: range.lowerBound, to: range.upperBound, by: Lanes.scalarCount) {
            let count = min(Lanes.scalarCount, range.upperBound - i)
            var p: Lanes = loadVector(parameters + i, count: count), m: Lanes = loadVector(firstMoment + i, count: count)
            var v: Lanes = loadVector(secondMoment + i, count: count)
            step(&p, loadVector(gradients + i, count: count), &m, &v)
            storeVector(p, parameters + i, count: count)
            storeVector(m, firstMoment + i, count: count)
            storeVector(v, secondMoment + i, count: count)
        }
    }

    @inline(__always)
    private func step(_ p: inout Lanes, _ g: Lanes, _ m: inout Lanes, _ v: inout Lanes) {
        m += (g - m) * firstWeight
        v = v * beta2 + secondWeight * g * g
        p = p * decay - stepSize * m / (v.squareRoot() / correction2Root + epsilon)
    }
}

/// An exponential moving average of a flat buffer (the weights, the BatchNorm statistics), for evaluating
/// the average instead of the last step's values: after optimizer step t (1, 2, …)
///   average ← d·average + (1 − d)·current,   d = min(decay, (1 + t) / (10 + t)),
/// the ramp (TensorFlow's ExponentialMovingAverage with num_updates) keeping the first steps from being
/// pulled back to the initial weights. The average is a pure function of the steps' values, so a
/// checkpoint holding it resumes exactly.
public final class WeightAverage {
    public let count: Int
    public let decay: Double
    /// The average, [count].
    public let values: UnsafeMutablePointer<Float>

    public init(count: Int, decay: Double) throws {
        try require(count >= 1, "averaged value count", count, "must be at least 1")
        try require(decay > 0 && decay < 1, "weight average decay", decay, "must be in (0, 1)")
        self.count = count
        self.decay = decay
        values = .allocate(capacity: count)
        values.initialize(repeating: 0, count: count)
    }

    deinit { values.deallocate() }

    /// d of optimizer step `step` (counted from 1).
    public func decay(atStep step: Int) -> Float { Float(min(decay, Double(1 + step) / Double(10 + step))) }

    /// Starts the average at `current`.
    public func reset(to current: UnsafePointer<Float>) { values.update(from: current, count: count) }

    /// Folds `current`, the values after optimizer step `step`, into the average.
    public func update(_ current: UnsafePointer<Float>, step: Int) {
        let job = (values, current, decay(atStep: step))
        withComputeThreads {
            parallelChunks(count, minimumChunk: 1 << 16, job) { job, lower, upper in
                let (average, current, d) = job.load(as: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Float).self)
                for i in lower..<upper { average[i] = d * average[i] + (1 - d) * current[i] }
            }
        }
    }

    /// Exchanges the average with `current`: a model evaluates the average, and a second call gives it its
    /// own values back.
    public func swap(with current: UnsafeMutablePointer<Float>) {
        for i in 0..<count { (values[i], current[i]) = (current[i], values[i]) }
    }
}

/// torch.nn.utils.clip_grad_norm_ over one flat buffer: scales all gradients by
/// min(1, maxNorm / (‖g‖₂ + 1e-6)) and returns the norm before clipping.
public func clipGradientNorm(_ gradients: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float) throws -> Float {
    try require(maxNorm > 0 && maxNorm.isFinite, "gradient clipping norm", maxNorm, "must be a positive finite number")
    var squares = 0.0
    for i in 0..<count { squares += Double(gradients[i]) * Double(gradients[i]) }
    let norm = Float(squares.squareRoot())
    let scale = min(1, maxNorm / (norm + 1e-6))
    if scale < 1 {
        for i in 0..<count { gradients[i] *= scale }
    }
    return norm
}

/// Learning rate as a pure function of the step (so a resumed run needs only the step number): linear
/// warm-up to `base` over `warmupSteps` (step 0 already gets base/warmupSteps, never 0), then a half cosine
/// from `base` down to `minimum` at `totalSteps`; steps past the end stay at `minimum`.
public struct CosineSchedule: Sendable {
    public let base, minimum: Float
    public let warmupSteps, totalSteps: Int

    public init(base: Float, minimum: Float = 0, warmupSteps: Int, totalSteps: Int) throws {
        try require(base > 0 && base.isFinite, "learning rate", base, "must be a positive finite number")
        try require(minimum >= 0 && minimum <= base, "minimum learning rate", minimum, "must be in [0, base]")
        try require(warmupSteps >= 0, "warm-up steps", warmupSteps, "must be non-negative")
        try require(totalSteps > warmupSteps, "total steps", totalSteps, "must exceed the \(warmupSteps) warm-up steps")
        self.base = base
        self.minimum = minimum
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func learningRate(atStep step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        let progress = min(1, Double(step - warmupSteps) / Double(totalSteps - warmupSteps))
        return minimum + (base - minimum) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}
