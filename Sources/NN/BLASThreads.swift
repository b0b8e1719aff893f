import CBLAS
import Foundation

public enum BLAS {
    /// OpenBLAS threads for this process: one per rank when several ranks share a node, else the cores.
    public static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(max(1, count))) }

    /// The OpenBLAS threads this process runs.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel family OpenBLAS runs on this CPU ("Haswell", "SkylakeX", "Zen", "Prescott", …).
    public static var kernelFamily: String { String(cString: openblas_get_corename()) }

    /// The family to ask OpenBLAS for (with OPENBLAS_CORETYPE, which it reads when it loads) when it fell
    /// back to its generic SSE3 kernels ("Prescott") on a CPU it does not recognise although the CPU runs a
    /// newer family's instructions: Debian 12's OpenBLAS 0.3.21 does that on Intel Emerald Rapids, where
    /// the SkylakeX kernels train a ResNet 2.4× faster. nil when OpenBLAS's own choice stands.
    public static var familyForUnrecognisedCPU: String? {
        guard kernelFamily == "Prescott",
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "\t" }))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }
}
