import ArgumentParser
import Datasets
import Foundation
import Train

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Make synthetic spoken digits with espeak-ng and sox (AudioMNIST layout, 48 kHz).",
        discussion: """
            Each speaker has its own voice, pitch, speed and microphone band; each clip varies around \
            them. Writes OUT/NN/{digit}_NN_{index}.wav, like AudioMNIST, so the demo and tests need no download.

            Example:
              digits-dist synth --out demo-data --speakers 6 --per-digit 10
              digits-dist synth --out accents --speakers 48 --per-digit 4 --voices en-us,fr-fr,de,es,it,hi
            """)

    @Option(help: "Folder to write (created if missing).")
    var out: String

    @Option(help: "Number of speakers (1-99).")
    var speakers: Int = 6

    @Option(help: "Clips per digit per speaker.")
    var perDigit: Int = 10

    @Option(help: "Seed of voices and effects.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp(
        "espeak-ng voices the speakers take in turn, comma-separated (default: its English ones). Another "
            + "language's voice reads the English words by its own rules: an accent.", valueName: "v1,v2,…"))
    var voices: String?

    func run() throws {
        try failing {
            let start = Date()
            let count = try SyntheticDigits.generate(into: out, speakers: speakers, perDigit: perDigit, seed: seed,
                                                     voices: voices.map { $0.split(separator: ",").map(String.init) }
                                                        ?? SyntheticDigits.englishVoices)
            Log.info(String(format: "wrote %d clips to %@ in %.1f s", count, out, Date().timeIntervalSince(start)))
        }
    }
}
