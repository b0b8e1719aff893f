/// Shared pieces of the hand-vectorised kernels (AdamW, BatchNorm, the convolutions).

/// p[0..<count] as one vector, the lanes past `count` zero: a single unaligned load when it is whole.
@inline(__always)
func loadVector<Vector: SIMD>(_ p: UnsafePointer<Float>, count: Int = Vector.scalarCount) -> Vector
where Vector.Scalar == Float {
    guard count < Vector.scalarCount else { return UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }
    var vector = Vector()
    for lane in 0..<count { vector[lane] = p[lane] }
    return vector
}

/// p[0..<count] = lanes 0..<count of `value`: a single unaligned store when it is whole.
@inline(__always)
func storeVector<Vector: SIMD>(_ value: Vector, _ p: UnsafeMutablePointer<Float>, count: Int = Vector.scalarCount)
where Vector.Scalar == Float {
    guard count < Vector.scalarCount else { return UnsafeMutableRawPointer(p).storeBytes(of: value, as: Vector.self) }
    for lane in 0..<count { p[lane] = value[lane] }
}

/// partials[i] += Σ_{j=1..<parts} partials[j·stride + i] for i in `range`, added in part order: the
/// per-sample (or per-group) weight-gradient partials of a convolution summed into the first, so the bits
/// do not depend on which thread computed which part. Contiguous runs, so it vectorises.
@inline(__always)
func sumPartialsInOrder(_ partials: UnsafeMutablePointer<Float>, parts: Int, stride: Int, range: Range<Int>) {
    for part in 1..<max(1, parts) {
        let partial = partials + part * stride
        for i in range { partials[i] += partial[i] }
    }
}

/// Part `index` of 0..<count cut into `parts` nearly equal consecutive ranges (the work of one task).
@inline(__always)
func chunk(_ index: Int, of parts: Int, count: Int) -> Range<Int> {
    (count * index / parts)..<(count * (index + 1) / parts)
}
