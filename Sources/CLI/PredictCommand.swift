import ArgumentParser
import Audio
import Foundation
import NN
import Train

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict the digit spoken in audio files: one JSON line per file.",
        discussion: """
            Each line holds the file, the predicted digit and the 10 probabilities. Files longer than \
            prediction.inference_chunk_seconds are cut into chunks of that length (method Fix; the last one \
            padded) whose probabilities are averaged; --chunks adds each chunk's own prediction. Audio past \
            prediction.max_inference_chunk_seconds is not read. A run folder with several fold models \
            predicts with their average; so do the models of every --checkpoint given (an ensemble of runs). \
            --adapt-batchnorm reads every file first and fits the models' BatchNorm to them (--adapt-epochs \
            passes of entropy minimisation of its scales and shifts, then its statistics), for a batch of \
            recordings of one caller or microphone: unseen FSDD speakers 0.884 -> 0.920 with 500 recordings \
            each (README, "Adapting to the caller").

            Examples:
              digits-dist predict --checkpoint runs/demo/fold-0/final.ckpt demo-data/01/7_01_0.wav
              digits-dist predict --checkpoint runs/demo --chunks long-recording.wav
              digits-dist predict --checkpoint runs/demo --adapt-batchnorm caller-42/*.wav
            """)

    @OptionGroup var ensemble: EnsembleOptions

    @Flag(help: "Also print every chunk's prediction.")
    var chunks = false

    @OptionGroup var adapt: AdaptOptions

    @Argument(help: "Audio files (WAV, FLAC; any rate and channel count).")
    var files: [String]

    struct Line: Encodable {
        struct Chunk: Encodable {
            var start_seconds: Double
            var digit: Int
            var probabilities: [Float]
        }
        var file: String
        var digit: Int
        var probabilities: [Float]
        var chunks: [Chunk]?
    }

    func run() throws {
        try failing {
            // Every model cuts the first's chunks, so that --chunks lines average chunk by chunk.
            let (models, config) = try ensemble.load { $0.double("prediction.inference_chunk_seconds") }
            let classifiers = models.map { $0.classifier() }
            let settings = models[0].metadata.audio
            let maxSamples = Int(config.double("prediction.max_inference_chunk_seconds") * Double(settings.sampleRate))
            let extractor = LogMelExtractor(settings: settings)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var failures = 0
            func features(of file: String) -> Features? {
                do {
                    let decoded = try AudioFile.read(path: file)
                    var samples = decoded.sampleRate == settings.sampleRate ? decoded.samples
                        : try Resampler.resample(decoded.samples, from: decoded.sampleRate, to: settings.sampleRate)
                    if samples.count > maxSamples { samples.removeLast(samples.count - maxSamples) }
                    let values = extractor.logMel(samples)
                    return Features(values: values, frames: values.count / settings.melBins, padding: values.min() ?? 0)
                } catch {
                    Log.error(error)
                    failures += 1
                    return nil
                }
            }
            func predict(_ file: String, _ features: Features) throws {
                var probabilities = [Float](repeating: 0, count: ChunkedClassifier.classes)
                var chunkLines: [Int: Line.Chunk] = [:]
                for classifier in classifiers {
                    let mean = try features.values.withUnsafeBufferPointer { buffer in
                        try classifier.classify(count: 1, clip: { _ in (buffer.baseAddress!, features.frames, features.padding) }) { _, start, chunk in
                            guard chunks else { return }
                            var line = chunkLines[start] ?? Line.Chunk(
                                start_seconds: Double(start * settings.hopSize) / Double(settings.sampleRate), digit: 0,
                                probabilities: [Float](repeating: 0, count: chunk.count))
                            for k in chunk.indices { line.probabilities[k] += chunk[k] / Float(classifiers.count) }
                            chunkLines[start] = line
                        }
                    }
                    for k in probabilities.indices { probabilities[k] += mean[k] / Float(classifiers.count) }
                }
                let chunkList = chunks ? chunkLines.keys.sorted().map { start -> Line.Chunk in
                    var line = chunkLines[start]!
                    line.digit = Self.argmax(line.probabilities)
                    return line
                } : nil
                let line = Line(file: file, digit: Self.argmax(probabilities), probabilities: probabilities, chunks: chunkList)
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            }
            if adapt.adaptBatchnorm {
                // Every file is read before the first is scored: the models adapt to all of them.
                let read = files.compactMap { file in features(of: file).map { (file: file, features: $0) } }
                if read.count < 10 {
                    // Measured on an unseen FSDD speaker: 10 clips at a time +1 point, 50 +1.4, 1 clip alone worse.
                    Log.info("--adapt-batchnorm with \(read.count) file(s): adapting is measured to help from 10 recordings of one caller up")
                }
                let flat = read.flatMap(\.features.values)
                let offsets = read.reduce(into: [0]) { $0.append($0.last! + $1.features.values.count) }
                try flat.withUnsafeBufferPointer { buffer in
                    let clip = { (i: Int) in (buffer.baseAddress! + offsets[i], read[i].features.frames, read[i].features.padding) }
                    for classifier in classifiers {
                        try classifier.adaptByEntropy(count: read.count, clip: clip, epochs: adapt.adaptEpochs)
                        try classifier.adaptBatchNorm(count: read.count, clip: clip)
                    }
                }
                for (file, features) in read { try predict(file, features) }
            } else {
                for file in files { if let features = features(of: file) { try predict(file, features) } }
            }
            if failures > 0 { throw ExitCode.failure }
        }
    }

    /// One file's log-mel (melBins rows), as a classifier reads it.
    struct Features {
        let values: [Float]
        let frames: Int
        let padding: Float
    }

    static func argmax(_ values: [Float]) -> Int {
        values.indices.max { values[$0] < values[$1] || (values[$0] == values[$1] && $0 > $1) }!
    }
}
