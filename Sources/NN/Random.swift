import Foundation

/// xoshiro256** seeded through SplitMix64. Our own generator (not the system's) so that weight init and
/// dropout masks are a pure function of the seed on every machine and Swift version.
public struct Xoshiro256: RandomNumberGenerator {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var state = seed
        s0 = Xoshiro256.splitMix64(&state)
        s1 = Xoshiro256.splitMix64(&state)
        s2 = Xoshiro256.splitMix64(&state)
        s3 = Xoshiro256.splitMix64(&state)
    }

    /// SplitMix64 spreads a possibly tiny seed (0, 1, 2, …) over all 256 bits of state.
    private static func splitMix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Xoshiro256.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Xoshiro256.rotl(s3, 45)
        return result
    }
}

/// The draws the engine and its augmentations use, the same for any of our seeded generators.
extension RandomNumberGenerator {
    /// Uniform in [0, 1) from the top 24 bits, so every value is exactly representable as a Float.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextUniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal by Box-Muller; the second variate is dropped so each call costs a fixed two draws.
    public mutating func nextGaussian() -> Double {
        let u1 = 1 - nextUniformDouble()  // (0, 1]: log stays finite
        let u2 = nextUniformDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
