/// ReLU. Backward needs only the output's sign, so the forward result may overwrite its input; the
/// network fuses the element function into the loops that produce its input (BatchNorm, residual add).
enum ReLU {
    /// y = max(x, 0)
    @inline(__always)
    static func apply(_ x: Float) -> Float { max(x, 0) }

    /// dx = dy·[y > 0], from the forward output y
    @inline(__always)
    static func gradient(output: Float, _ dy: Float) -> Float { output > 0 ? dy : 0 }

    /// grad[n] → grad·[output > 0] in place, with `output` the forward result
    static func backward(output: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { grad[i] = gradient(output: output[i], grad[i]) }
    }
}

/// Inverted dropout (PyTorch's): kept values are scaled by 1/(1−p) in training, identity in evaluation.
/// It owns its generator so masks are reproducible from the model seed and independent of data order.
final class Dropout {
    let probability: Float
    private var rng: Xoshiro256
    private let mask: UnsafeMutablePointer<Float>  // 0 or 1/(1−p) per element of the last training forward
    private let capacity: Int

    init(probability: Float, capacity: Int, seed: UInt64) {
        self.probability = probability
        self.capacity = capacity
        rng = Xoshiro256(seed: seed)
        mask = .allocate(capacity: capacity)
        mask.initialize(repeating: 1, count: capacity)
    }

    deinit { mask.deallocate() }

    /// x[n] → x·mask in place (training) or unchanged (evaluation)
    func forward(_ x: UnsafeMutablePointer<Float>, count: Int, training: Bool) {
        guard training else {
            mask.update(repeating: 1, count: count)
            return
        }
        let keptScale = 1 / (1 - probability)
        for i in 0..<count {
            mask[i] = rng.nextUniform() < probability ? 0 : keptScale
            x[i] *= mask[i]
        }
    }

    /// grad[n] → grad·mask in place
    func backward(_ grad: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { grad[i] *= mask[i] }
    }
}

/// Max pooling (torchvision's stem uses 3×3, stride 2, padding 1). Padding never wins the max, as in
/// PyTorch; the winning input index of each output is kept for backward.
final class MaxPool2d {
    let geometry: ConvGeometry
    private let argmax: UnsafeMutablePointer<Int32>  // [C][B][Ho][Wo] → index within the input plane

    var outputHeight: Int { geometry.outputHeight }
    var outputWidth: Int { geometry.outputWidth }

    init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int, maxBatch: Int) throws {
        geometry = ConvGeometry(channels: channels, height: height, width: width, kernel: kernel, stride: stride,
                                padding: padding)
        try require(geometry.outputHeight >= 1 && geometry.outputWidth >= 1 && padding < kernel,
                    "max-pool input size", "\(height)x\(width)", "too small for a \(kernel)x\(kernel) window")
        let count = channels * maxBatch * geometry.outputHeight * geometry.outputWidth
        argmax = .allocate(capacity: count)
        argmax.initialize(repeating: 0, count: count)
    }

    deinit { argmax.deallocate() }

    /// input [C][B][H][W] → output [C][B][Ho][Wo]
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        let job = MaxPoolJob(geometry: geometry, argmax: argmax, input: input, output: output)
        parallelChunks(geometry.channels * batch, job) { job, lower, upper in
            let job = job.load(as: MaxPoolJob.self), g = job.geometry, outH = g.outputHeight, outW = g.outputWidth
            for plane in lower..<upper {
                let x = job.input + plane * g.height * g.width
                let y = job.output + plane * outH * outW, winner = job.argmax + plane * outH * outW
                for oy in 0..<outH {
                    let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernel, g.height)
                    for ox in 0..<outW {
                        let x0 = max(ox * g.stride - g.padding, 0)
                        let x1 = min(ox * g.stride - g.padding + g.kernel, g.width)
                        var best = -Float.infinity, bestIndex = y0 * g.width + x0
                        for iy in y0..<y1 {
                            for ix in x0..<x1 where x[iy * g.width + ix] > best {
                                best = x[iy * g.width + ix]
                                bestIndex = iy * g.width + ix
                            }
                        }
                        y[oy * outW + ox] = best
                        winner[oy * outW + ox] = Int32(bestIndex)
                    }
                }
            }
        }
    }

    /// doutput [C][B][Ho][Wo] → dinput [C][B][H][W] (overwritten): each gradient goes to its window's max.
    func backward(doutput: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, batch: Int) {
        let job = MaxPoolJob(geometry: geometry, argmax: argmax, input: doutput, output: dinput)
        parallelChunks(geometry.channels * batch, job) { job, lower, upper in
            let job = job.load(as: MaxPoolJob.self), g = job.geometry
            let outPlane = g.outputHeight * g.outputWidth, inPlane = g.height * g.width
            for plane in lower..<upper {
                let dy = job.input + plane * outPlane, dx = job.output + plane * inPlane
                let winner = job.argmax + plane * outPlane
                for i in 0..<inPlane { dx[i] = 0 }
                for o in 0..<outPlane { dx[Int(winner[o])] += dy[o] }
            }
        }
    }
}

/// A max-pool pass for the parallel loop: forward reads input and writes output; backward reads the
/// output gradient as `input` and writes the input gradient as `output`.
private struct MaxPoolJob {
    let geometry: ConvGeometry
    let argmax: UnsafeMutablePointer<Int32>
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
}

/// Global average pooling: the mean of each [H][W] plane.
enum GlobalAveragePool {
    /// input [C][B][H][W] → output [C][B]
    static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, planes: Int, spatial: Int) {
        for plane in 0..<planes {
            let x = input + plane * spatial
            var sum: Float = 0
            for i in 0..<spatial { sum += x[i] }
            output[plane] = sum / Float(spatial)
        }
    }

    /// doutput [C][B] → dinput [C][B][H][W] = doutput / (H·W)
    static func backward(doutput: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, planes: Int,
                         spatial: Int) {
        for plane in 0..<planes {
            (dinput + plane * spatial).update(repeating: doutput[plane] / Float(spatial), count: spatial)
        }
    }
}

/// Fully connected layer y = x·Wᵀ + b with PyTorch's weight layout [out][in]. Its input comes from the
/// channel-major activations, so it is read as xᵀ: input [in][B] → output [B][out] (the logits' layout).
final class Linear {
    let inFeatures, outFeatures: Int
    let weight, bias: TensorSlot  // [out][in], [out]
    private let context: NetworkContext

    init(_ context: NetworkContext, name: String, inFeatures: Int, outFeatures: Int) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.context = context
        weight = context.reserveParameter(name + ".weight", shape: [outFeatures, inFeatures])
        bias = context.reserveParameter(name + ".bias", shape: [outFeatures])
    }

    /// PyTorch's default: weight kaiming_uniform(a=√5) and bias, both U(−1/√in, 1/√in).
    func initialize(_ rng: inout Xoshiro256) {
        let bound = 1 / Float(inFeatures).squareRoot()
        let p = context.parameters + weight.offset
        for i in 0..<(weight.count + bias.count) { p[i] = (2 * rng.nextUniform() - 1) * bound }
    }

    var forwardFlopsPerSample: Int { 2 * inFeatures * outFeatures }

    /// input [in][B] → output [B][out]
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        let b = context.parameters + bias.offset
        for row in 0..<batch { (output + row * outFeatures).update(from: b, count: outFeatures) }
        gemm(context.precision, transposeA: true, transposeB: true, m: batch, n: outFeatures, k: inFeatures,
             input, lda: batch, context.parameters + weight.offset, ldb: inFeatures, beta: 1, output, ldc: outFeatures)
    }

    /// doutput [B][out] → dweight += doutputᵀ·xᵀ, dbias += Σ_b doutput, dinput [in][B] = W ᵀ·doutputᵀ
    func backward(input: UnsafePointer<Float>, doutput: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>,
                  batch: Int) {
        gemm(context.precision, transposeA: true, transposeB: true, m: outFeatures, n: inFeatures, k: batch,
             doutput, lda: outFeatures, input, ldb: batch, beta: 1, context.gradients + weight.offset, ldc: inFeatures)
        let dbias = context.gradients + bias.offset
        for row in 0..<batch {
            for o in 0..<outFeatures { dbias[o] += doutput[row * outFeatures + o] }
        }
        gemm(context.precision, transposeA: true, transposeB: true, m: inFeatures, n: batch, k: outFeatures,
             context.parameters + weight.offset, lda: inFeatures, doutput, ldb: outFeatures, beta: 0, dinput, ldc: batch)
        context.gradientsReady?(weight.offset..<(bias.offset + outFeatures))
    }
}
