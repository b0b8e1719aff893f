import Audio
import Datasets
import Foundation
@testable import Train
import XCTest

/// A bounded mutation fuzzer over the four parsers that read what users hand us: WAV (libsndfile and our
/// decoding), CSV datasets, YAML run configs and checkpoints. Each input is written to a file and parsed;
/// any thrown error is a pass (bad input must be refused, one line), only a crash or a hang fails. The
/// committed corpus (Corpus/<parser>/: valid files and every input a fuzzing run found crashing, once
/// fixed) is replayed on every test run; `scripts/fuzz.sh SECONDS` mutates it for that long per parser and
/// saves an input that crashed as fuzz-crash-<parser> for the corpus.
final class ParserFuzzTests: XCTestCase {
    enum Parser: String, CaseIterable {
        case wav, csv, yaml, checkpoint

        /// Parses the file at `path`; a thrown error is a clean refusal.
        func parse(_ path: String) throws {
            switch self {
            case .wav: _ = try AudioFile.read(path: path)
            case .csv: _ = try Dataset.load(path: path)
            case .yaml: _ = try TrainingRecipe(config: try RunConfig.load(path: path), seed: 1)
            case .checkpoint: _ = try RunConfig.parseSaved(yaml: try Checkpoint.read(from: path).metadata.config, source: path)
            }
        }

        var fileExtension: String { self == .checkpoint ? "ckpt" : rawValue }
    }

    func corpus(_ parser: Parser) throws -> [[UInt8]] {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Corpus", withExtension: nil)).appendingPathComponent(parser.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { Array(try Data(contentsOf: folder.appendingPathComponent($0))) }
    }

    /// Where the input being parsed sits: after a crash it is the crashing input (scripts/fuzz.sh names the
    /// folder in FUZZ_OUT and reports it; otherwise a name of this process's own).
    func scratchPath(_ parser: Parser) -> String {
        let folder = ProcessInfo.processInfo.environment["FUZZ_OUT"]
            ?? FileManager.default.temporaryDirectory.path + "/digits-dist-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder + "/fuzz-crash-\(parser.rawValue).\(parser.fileExtension)"
    }

    /// No crash: the scratch input goes (and this process's own folder, once empty).
    func passed(_ parser: Parser) {
        let path = scratchPath(parser)
        try? FileManager.default.removeItem(atPath: path)
        rmdir((path as NSString).deletingLastPathComponent)
    }

    func run(_ parser: Parser, _ input: [UInt8]) throws {
        let path = scratchPath(parser)
        try Data(input).write(to: URL(fileURLWithPath: path))
        do { try parser.parse(path) } catch {
            XCTAssertFalse("\(error)".contains("\n"), "\(parser): a refusal must be one line: \(error)")
        }
    }

    func testTheCorpusParsesOrIsRefusedWithOneLine() throws {
        for parser in Parser.allCases {
            let inputs = try corpus(parser)
            XCTAssertFalse(inputs.isEmpty, "\(parser) corpus is empty")
            for input in inputs { try run(parser, input) }
            passed(parser)
        }
    }

    /// FUZZ_SECONDS (scripts/fuzz.sh) of mutations per parser; without it, 200 per parser so every test run
    /// exercises the mutator and a little of the space around the corpus.
    func testMutatedInputsParseOrAreRefused() throws {
        let seconds = Double(ProcessInfo.processInfo.environment["FUZZ_SECONDS"] ?? "") ?? 0
        var rng = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 1)
        for parser in Parser.allCases {
            let inputs = try corpus(parser)
            let deadline = Date().addingTimeInterval(seconds)
            var count = 0
            while seconds > 0 ? Date() < deadline : count < 200 {
                var input = inputs[rng.nextInt(below: inputs.count)]
                for _ in 0...rng.nextInt(below: 4) { Self.mutate(&input, splicing: inputs, text: parser == .csv || parser == .yaml, &rng) }
                try run(parser, input)
                count += 1
            }
            passed(parser)
            if seconds > 0 { print("fuzz \(parser): \(count) inputs, no crash") }
        }
    }

    /// Bytes and tokens that parsers tend to trip on.
    static let interestingBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x0A, 0x0D, 0x22, 0x2C, 0x3A]
    static let tokens = ["\n", "\r\n", "\"", ",", ":", "- ", "[", "]", "{", "}", "'", "\u{FEFF}", "-1", "1e309", "nan", "NaN",
                         "9999999999999999999999", "0x10", "~", "&a", "*a", "!!binary", "\t", "é", "None", "all", "true"]

    static func mutate(_ input: inout [UInt8], splicing corpus: [[UInt8]], text: Bool, _ rng: inout SplitMix64) {
        let position = input.isEmpty ? 0 : rng.nextInt(below: input.count + 1)
        switch rng.nextInt(below: text ? 8 : 7) {
        case 0 where !input.isEmpty:  // flip a bit
            let i = min(position, input.count - 1)
            input[i] ^= UInt8(1) << UInt8(rng.nextInt(below: 8))
        case 1 where !input.isEmpty:  // an interesting byte
            input[min(position, input.count - 1)] = interestingBytes[rng.nextInt(below: interestingBytes.count)]
        case 2:  // truncate
            input.removeLast(input.count - position)
        case 3 where !input.isEmpty:  // delete a run
            let length = min(input.count - min(position, input.count - 1), 1 + rng.nextInt(below: 16))
            input.removeSubrange(min(position, input.count - 1)..<(min(position, input.count - 1) + length))
        case 4:  // duplicate a run
            let start = input.isEmpty ? 0 : rng.nextInt(below: input.count)
            let run = Array(input[start..<min(input.count, start + 1 + rng.nextInt(below: 64))])
            input.insert(contentsOf: run, at: position)
        case 5:  // random bytes
            input.insert(contentsOf: (0..<(1 + rng.nextInt(below: 8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: position)
        case 6:  // splice another corpus file's tail
            let other = corpus[rng.nextInt(below: corpus.count)]
            input = Array(input[..<position]) + Array(other[rng.nextInt(below: other.count + 1)...])
        default:  // a token of the text formats
            input.insert(contentsOf: Array(tokens[rng.nextInt(below: tokens.count)].utf8), at: position)
        }
        // Little-endian size fields are where binary readers go wrong: sometimes make one huge or zero.
        if !text, input.count >= 8, rng.nextInt(below: 8) == 0 {
            let i = rng.nextInt(below: input.count - 3)
            let value: UInt32 = [0, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000][rng.nextInt(below: 4)]
            for k in 0..<4 { input[i + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
        }
    }
}
