import Dist
import Foundation
import NN

/// The arithmetic of a run's matrix products: `environment.mixed_precision_training` for the training
/// steps, `environment.mixed_precision_inference` for everything that only runs forward (validation, test
/// scores, `evaluate`, `predict`). Each is bf16 where the key asks for it and the CPU makes it pay
/// (`Precision.choose`, with DIGITS_DIST_BF16 to force either way), else Float32.
public struct PrecisionPlan: Sendable, Equatable {
    public var training: Precision
    public var inference: Precision

    public static let float32 = PrecisionPlan(training: .fp32, inference: .fp32)

    public init(training: Precision, inference: Precision) {
        self.training = training
        self.inference = inference
    }

    /// The choice of every rank of `world`, agreed: bf16 only where every rank chose it, so all ranks
    /// compute alike. Rank 0 logs one line per side saying what was chosen and why.
    public static func agreed(config: RunConfig, world: Communicator,
                              override: String? = ProcessInfo.processInfo.environment["DIGITS_DIST_BF16"]) throws
        -> PrecisionPlan {
        func agree(_ key: String, _ side: String) throws -> Precision {
            let mine = try Precision.choose(mixed: config.bool(key), override: override)
            let everyRankBF16 = try world.allReduceMax(Int32(mine.precision == .fp32 ? 1 : 0)) == 0
            let precision: Precision = everyRankBF16 ? .bf16 : .fp32
            Log.info("\(side) precision: " + (precision == mine.precision ? mine.reason
                : "Float32: mixed precision asked for, but another rank's CPU cannot run bf16 or would run it slower"))
            return precision
        }
        return PrecisionPlan(training: try agree("environment.mixed_precision_training", "training"),
                             inference: try agree("environment.mixed_precision_inference", "inference"))
    }

    /// A checkpoint's training precision: recorded since mixed precision exists, Float32 before.
    public static func training(of metadata: CheckpointMetadata) -> Precision {
        metadata.precision.flatMap(Precision.init(rawValue:)) ?? .fp32
    }
}
