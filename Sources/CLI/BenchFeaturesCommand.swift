import ArgumentParser
import Audio
import Datasets
import Foundation
import Train

struct BenchFeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Clips per second of WAV → log-mel (decode, resample, features) on one core.",
        discussion: """
            Without --data, writes --clips synthetic 48 kHz clips of 0.4–1 s (like AudioMNIST) to a temporary \
            folder first. With --cache, also builds the dataset's feature cache on all cores and reports its \
            rate and the peak resident memory. scripts/bench-features.sh runs librosa on the same clips.

            Examples:
              digits-dist bench features --clips 500
              digits-dist bench features --data demo-data --cache
            """)

    @Option(help: "Synthetic clips to time when no --data is given.")
    var clips: Int = 300

    @Option(help: "Dataset folder or CSV whose clips are timed instead.")
    var data: String?

    @Option(help: "Time every .wav file in this folder (e.g. the clips scripts/bench-features-librosa.py --keep-dir wrote).")
    var wavFolder: String?

    @Flag(help: "Also build the full feature cache on all cores (in a temporary folder).")
    var cache = false

    @OptionGroup var configOptions: ConfigOptions

    func run() throws {
        try failing {
            let settings = try configOptions.load().audioSettings
            let scratch = FileManager.default.temporaryDirectory.path + "/digits-dist-bench-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let dataset: Dataset
            if let data {
                dataset = try Dataset.load(path: data)
            } else if let wavFolder {
                let files = try FileManager.default.contentsOfDirectory(atPath: wavFolder).filter { $0.hasSuffix(".wav") }.sorted()
                guard !files.isEmpty else { throw ValidationError("\(wavFolder): no .wav files") }
                dataset = Dataset(root: wavFolder, layout: .fsdd,
                                  clips: files.map { Clip(path: wavFolder + "/" + $0, label: 0, speaker: "bench") })
            } else {
                try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
                dataset = try Dataset(root: scratch, layout: .fsdd, clips: Self.writeToneClips(count: clips, into: scratch))
            }
            let extractor = LogMelExtractor(settings: settings)
            _ = try extractor.logMel(path: dataset.clips[0].path)  // page in the code and the first file
            let start = Date()
            var seconds = 0.0
            for clip in dataset.clips {
                let (_, frames) = try extractor.logMel(path: clip.path)
                seconds += Double(frames - 1) * settings.hopSeconds
            }
            let elapsed = Date().timeIntervalSince(start)
            print(String(format: "digits-dist features: %.0f clips/s on 1 core (%d clips, %.1f s of audio, %.2f s)",
                         Double(dataset.clips.count) / elapsed, dataset.clips.count, seconds, elapsed))
            if cache {
                let before = Self.peakResidentMegabytes()
                let start = Date()
                let built = try FeatureCache.open(dataset: dataset, settings: settings, directory: scratch + "/cache")
                let elapsed = Date().timeIntervalSince(start)
                let cacheMB = Double(try FileManager.default.attributesOfItem(atPath: built.path)[.size] as! Int) / 1_048_576
                print(String(format: "feature cache: %.0f clips/s on %d cores, %.1f MB file, peak RSS %.0f MB (%.0f MB before)",
                             Double(dataset.clips.count) / elapsed, ProcessInfo.processInfo.activeProcessorCount,
                             cacheMB, Self.peakResidentMegabytes(), before))
            }
        }
    }

    /// 48 kHz clips of 0.4–1 s: a gliding tone with harmonics and a little noise, so every frame has content.
    static func writeToneClips(count: Int, into folder: String) throws -> [Clip] {
        var rng = SplitMix64(seed: 1)
        return try (0..<count).map { i in
            let length = 19_200 + rng.nextInt(below: 28_800)
            let f0 = 100 + 200 * Double(rng.nextFloat())
            var phase = 0.0
            let samples = (0..<length).map { n -> Float in
                phase += 2 * Double.pi * f0 * (1 + Double(n) / Double(length)) / 48_000
                return Float(0.3 * sin(phase) + 0.1 * sin(3 * phase)) + 0.01 * (rng.nextFloat() - 0.5)
            }
            let path = "\(folder)/\(i % 10)_bench_\(i).wav"
            try AudioFile.writeWAV(path: path, samples: samples, sampleRate: 48_000)
            return Clip(path: path, label: i % 10, speaker: "bench")
        }
    }

    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
