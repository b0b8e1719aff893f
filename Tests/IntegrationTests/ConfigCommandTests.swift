import Foundation
import Train
import XCTest

/// `digits-dist config` lists every key; `config --check` validates a config as train reads it, without training.
final class ConfigCommandTests: XCTestCase {
    func testEveryKeyIsListedWithItsDefaultAndIgnoredKeysSayWhy() throws {
        let listed = try runProcess([try digitsDistBinary(), "config"], timeout: 60)
        XCTAssertEqual(listed.status, 0, listed.summary)
        let lines = listed.stdout.split(separator: "\n").map(String.init)
        for key in ConfigKey.all {
            let line = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("  \(key.name)  ") }, "\(key.name) missing")
            XCTAssertTrue(lines[line].hasSuffix("default \(key.defaultValue)"), lines[line])
            let meaning = lines[line + 1]
            if let why = key.ignoredBecause { XCTAssertTrue(meaning.contains("ignored: \(why)"), meaning) }
            else { XCTAssertEqual(meaning, "      " + key.help) }
        }
        XCTAssertTrue(lines.contains("  training.epochs  integer ≥ 1  default 5"), listed.stdout)
        XCTAssertTrue(lines.contains("  audio.spectrogram_normalization  No|PerClip|PerBand  default PerClip"), listed.stdout)
    }

    func testCheckPassesTheSeedConfigAndFailsBadOnesWithOneLine() throws {
        let binary = try digitsDistBinary()
        let seed = try runProcess([binary, "config", "--check", repositoryRoot + "/configs/amnist.yaml"], timeout: 60)
        XCTAssertEqual(seed.status, 0, seed.summary)
        XCTAssertTrue(seed.stdout.contains("amnist.yaml: valid; sets "), seed.stdout)
        XCTAssertTrue(seed.stdout.contains("environment.gpus"), "the ignored keys it sets are named\n" + seed.stdout)
        let bad: [([String], String)] = [
            (["--set", "training.epochs=0"], "training.epochs = 0"),
            (["--set", "augmentation.noise_min_snr_db=50"], "augmentation.noise_min_snr_db = 50.0 is above augmentation.noise_max_snr_db"),
            (["--set", "training.epoch=3"], "unknown key 'training.epoch'"),
        ]
        for (overrides, message) in bad {
            let run = try runProcess([binary, "config", "--check", repositoryRoot + "/configs/fsdd.yaml"] + overrides, timeout: 60)
            XCTAssertEqual(run.status, 1, run.summary)
            let errors = run.stderr.split(separator: "\n").filter { $0.contains("error:") }
            XCTAssertEqual(errors.count, 1, run.summary)
            XCTAssertTrue(errors.first?.contains(message) ?? false, run.summary)
        }
    }
}
