// swift-tools-version:6.0
// digits-dist: MPI data-parallel ResNet training for spoken digits.
// Dependency arrows point one way: CLI → Train → Augment / Dist / NN / Datasets → Audio (Augment → Datasets, NN).
import Foundation
import PackageDescription

let package = Package(
    name: "digits-dist",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "digits-dist", targets: ["CLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries, found with pkg-config (Debian -dev packages in scripts/setup.sh).
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CSndFile", path: "Sources/CSndFile", pkgConfig: "sndfile",
                       providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSoxr", path: "Sources/CSoxr", pkgConfig: "soxr",
                       providers: [.apt(["libsoxr-dev"])]),

        // CBF16: the bfloat16 GEMM kernel of mixed precision (AVX512_BF16 intrinsics, chosen at run time).
        // Optimised in debug builds too: the tests train with it, and its throughput probe times it.
        .target(name: "CBF16", path: "Sources/CBF16", cSettings: [.unsafeFlags(["-O2"])]),

        // Audio: decoding, resampling, log-mel features (librosa-equal).
        .target(name: "Audio", dependencies: ["CSndFile", "CFFTW", "CSoxr"], path: "Sources/Audio",
                swiftSettings: optimized),
        // Datasets: layouts, speaker-grouped folds, memory-mapped feature cache, synthetic digits.
        .target(name: "Datasets", dependencies: ["Audio"], path: "Sources/Datasets",
                swiftSettings: optimized),
        // NN: layers (forward + backward), ResNet, losses, AdamW on OpenBLAS (and CBF16 in mixed precision).
        .target(name: "NN", dependencies: ["CBLAS", "CBF16"], path: "Sources/NN", swiftSettings: optimized),
        // Augment: speaker-robust augmentations of training crops (SpecAugment, tempo, VTLP, gain, noise, mixup).
        .target(name: "Augment", dependencies: ["Audio", "Datasets", "NN"], path: "Sources/Augment", swiftSettings: optimized),
        // Dist: the MPI communicator.
        .target(name: "Dist", dependencies: ["CMPI"], path: "Sources/Dist", swiftSettings: optimized),
        // Train: configs, the training loop, metrics, checkpoints.
        .target(name: "Train",
                dependencies: ["Audio", "Augment", "Datasets", "NN", "Dist", .product(name: "Yams", package: "Yams")],
                path: "Sources/Train", swiftSettings: optimized),
        // Report: the HTML report of a run folder (plots drawn as SVG).
        .target(name: "Report", dependencies: ["Train"], path: "Sources/Report", swiftSettings: optimized),
        // Export: a trained model as ONNX.
        .target(name: "Export", dependencies: ["Train", "NN"], path: "Sources/Export", swiftSettings: optimized),
        // CLI: the `digits-dist` command.
        .executableTarget(name: "CLI",
                          dependencies: ["Report", "Export", "Train", "Augment", "Datasets", "Audio", "NN", "Dist",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/CLI", swiftSettings: optimized),

        .testTarget(name: "AudioTests", dependencies: ["Audio"], path: "Tests/AudioTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Audio"], path: "Tests/DatasetsTests"),
        .testTarget(name: "NNTests", dependencies: ["NN", "CBF16"], path: "Tests/NNTests"),
        .testTarget(name: "AugmentTests", dependencies: ["Augment", "Datasets", "Audio"], path: "Tests/AugmentTests"),
        .testTarget(name: "TrainTests", dependencies: ["Train", "NN", "Augment"], path: "Tests/TrainTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Train"], path: "Tests/ReportTests"),
        .testTarget(name: "ExportTests", dependencies: ["Export"], path: "Tests/ExportTests"),
        // Pure Dist logic only (no MPI_Init: every test target shares one process); MPI runs in IntegrationTests.
        .testTarget(name: "DistTests", dependencies: ["Dist"], path: "Tests/DistTests"),
        .testTarget(name: "FuzzTests", dependencies: ["Train", "Datasets", "Audio"], path: "Tests/FuzzTests",
                    resources: [.copy("Corpus")]),
        .testTarget(name: "IntegrationTests", dependencies: ["Train", "Export", "Datasets", "Audio", "NN"], path: "Tests/IntegrationTests"),
    ],
    // Swift 5 mode: the kernels share raw buffers across threads by design (disjoint slices).
    swiftLanguageModes: [.v5]
)

/// Numeric kernels are checked for bounds in debug builds; release builds (benchmarks, training) drop the checks
/// and use the vector instructions of the CPU they are built on (AVX2, AVX-512): scripts/setup.sh builds on the
/// machine that trains, as HPC codes do with -march=native. DIGITS_DIST_TARGET_CPU names another CPU (for
/// example haswell, for one binary shared by nodes of different generations).
var optimized: [SwiftSetting] {
    let targetCPU = ProcessInfo.processInfo.environment["DIGITS_DIST_TARGET_CPU"] ?? "native"
    return [.unsafeFlags(["-Ounchecked", "-target-cpu", targetCPU], .when(configuration: .release))]
}
