import Foundation

/// Spoken digits made with espeak-ng and sox, in the AudioMNIST layout at 48 kHz
/// (`OUT/NN/{digit}_{NN}_{index}.wav`), so demos and tests run on a fresh machine with no download.
/// Each speaker gets its own voice, variant, pitch, speed and "microphone" (band limits); each clip
/// varies pitch, speed, level and leading/trailing silence around the speaker's own.
public enum SyntheticDigits {
    static let words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    public static let englishVoices = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                                       "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
    static let variants = ["m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "m7"]

    struct Speaker {
        var voice: String
        var pitch: Int
        var speed: Int
        var highpass: Int
        var lowpass: Int
    }

    /// Writes `speakers × 10 × perDigit` clips under `directory`; returns the number written.
    /// The same seed gives the same voices and effects.
    @discardableResult
    public static func generate(into directory: String, speakers: Int, perDigit: Int, seed: UInt64 = 0,
                                voices names: [String] = englishVoices,
                                threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> Int {
        guard (1...99).contains(speakers) else {
            throw DatasetError(path: directory, problem: "speakers must be 1-99 (got \(speakers))")
        }
        guard perDigit >= 1 else {
            throw DatasetError(path: directory, problem: "per-digit must be at least 1 (got \(perDigit))")
        }
        for tool in ["espeak-ng", "sox"] where findExecutable(tool) == nil {
            throw DatasetError(path: tool, problem: "not found on PATH: run scripts/setup.sh (apt-get install espeak-ng sox)")
        }
        guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && !$0.contains("+") }) else {
            throw DatasetError(path: "--voices", problem: "expected espeak-ng voice names such as en-us,fr-fr (got \(names.joined(separator: ",")))")
        }
        var rng = SplitMix64(seed: seed)
        let voices = (0..<speakers).map { s in
            Speaker(voice: names[s % names.count] + "+" + variants[(s * 5 + s / names.count) % variants.count],
                    pitch: 25 + rng.nextInt(below: 50), speed: 125 + rng.nextInt(below: 60),
                    highpass: 60 + rng.nextInt(below: 200), lowpass: 4500 + rng.nextInt(below: 5500))
        }
        struct Job { var speaker: Int; var digit: Int; var index: Int; var seed: UInt64 }
        var jobs: [Job] = []
        for s in 0..<speakers {
            try FileManager.default.createDirectory(atPath: directory + String(format: "/%02d", s + 1),
                                                    withIntermediateDirectories: true)
            for digit in 0..<10 { for i in 0..<perDigit { jobs.append(Job(speaker: s, digit: digit, index: i, seed: rng.next())) } }
        }
        let lock = NSLock()
        var failure: Error?
        let workers = max(1, min(threads, jobs.count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for j in stride(from: worker, to: jobs.count, by: workers) {
                let job = jobs[j]
                let name = String(format: "%02d", job.speaker + 1)
                let out = "\(directory)/\(name)/\(job.digit)_\(name)_\(job.index).wav"
                do {
                    try synthesize(word: words[job.digit], speaker: voices[job.speaker], seed: job.seed, to: out)
                } catch {
                    lock.lock(); failure = failure ?? error; lock.unlock()
                    return
                }
            }
        }
        if let failure { throw failure }
        return jobs.count
    }

    static func synthesize(word: String, speaker: Speaker, seed: UInt64, to path: String) throws {
        var rng = SplitMix64(seed: seed)
        let spoken = path + ".espeak.wav"
        defer { unlink(spoken) }
        try run("espeak-ng", ["-v", speaker.voice, "-p", "\(speaker.pitch + rng.nextInt(below: 13) - 6)",
                              "-s", "\(speaker.speed + rng.nextInt(below: 31) - 15)", "-w", spoken, word])
        let lead = String(format: "%.3f", 0.02 + 0.15 * Double(rng.nextFloat()))
        let trail = String(format: "%.3f", 0.02 + 0.15 * Double(rng.nextFloat()))
        let level = String(format: "-%.1f", 1 + 8 * Double(rng.nextFloat()))
        try run("sox", [spoken, "-r", "48000", "-b", "16", "-c", "1", path,
                        "highpass", "\(speaker.highpass)", "lowpass", "\(speaker.lowpass)",
                        "pad", lead, trail, "gain", "-n", level])
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: findExecutable(tool)!)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).split(separator: "\n").first ?? ""
            throw DatasetError(path: tool, problem: "exited with \(process.terminationStatus): \(text)")
        }
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
