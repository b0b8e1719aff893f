import CBF16
import Foundation

/// The arithmetic of the network's matrix products: the convolutions and the linear layer, forward and
/// backward. Everything else is Float32 in either: the master weights, BatchNorm and its statistics, the
/// loss, the gradients and their all-reduce, AdamW.
public enum Precision: String, Sendable, CaseIterable {
    /// Float32 operands and sums (OpenBLAS's sgemm).
    case fp32
    /// Operands rounded to bfloat16 (to nearest, ties to even), products summed in Float32 by AVX512_BF16's
    /// vdpbf16ps: what PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)` computes in the same layers.
    case bf16

    /// As logs and reports name it.
    public var name: String { self == .fp32 ? "Float32" : "bf16" }

    /// This CPU (and its operating system) runs the bf16 kernel.
    public static let bf16Available = bf16_gemm_available() != 0

    /// One core's FLOP/s of bf16 dot products and of Float32 FMAs (see `bf16_probe`), measured once per
    /// process; nil without AVX512_BF16.
    public static let arithmeticRates: (bf16: Double, fp32: Double)? = {
        guard bf16Available else { return nil }
        var bf16 = 0.0, fp32 = 0.0
        bf16_probe(&bf16, &fp32)
        return (bf16, fp32)
    }()

    /// The precision a run asking for mixed precision (`mixed`) gets on this CPU, and why, in one line.
    /// `override` is DIGITS_DIST_BF16: "off" acts as a CPU without bf16 (so an AVX512_BF16 machine tests the
    /// fallback), "on" takes bf16 wherever the instructions exist, "auto" or nil also asks that they be
    /// faster than Float32 here: a vdpbf16ps does twice an FMA's work on AMD Zen 4 but takes twice its time
    /// on Intel Sapphire/Emerald Rapids, where mixed precision would slow training down.
    public static func choose(mixed: Bool, override: String?) throws -> (precision: Precision, reason: String) {
        guard mixed else { return (.fp32, "Float32 (mixed precision is off)") }
        switch override ?? "auto" {
        case "off":
            return (.fp32, "Float32: mixed precision asked for, bf16 turned off by DIGITS_DIST_BF16=off")
        case "on", "auto":
            guard let rates = arithmeticRates else {
                return (.fp32, "Float32: mixed precision asked for, but this CPU has no AVX512_BF16")
            }
            if override == "on" { return (.bf16, "bf16 (forced by DIGITS_DIST_BF16=on)") }
            let ratio = rates.bf16 / rates.fp32
            let measured = String(format: "%.2f× its Float32 FMA rate (%.0f vs %.0f GFLOP/s per core)", ratio,
                                  rates.bf16 * 1e-9, rates.fp32 * 1e-9)
            if ratio > 1 { return (.bf16, "bf16: this CPU's bf16 dot products run at \(measured)") }
            return (.fp32, "Float32: mixed precision asked for, but this CPU's bf16 dot products run at only "
                + "\(measured), so bf16 would be slower; DIGITS_DIST_BF16=on forces it")
        default:
            throw NNError.invalidArgument(name: "DIGITS_DIST_BF16", value: override!, problem: "must be on, off or auto")
        }
    }
}
