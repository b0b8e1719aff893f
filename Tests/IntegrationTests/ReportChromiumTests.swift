import Foundation
import XCTest

/// `digits-dist report` end to end: the real binary writes report.html for a run folder, and headless
/// Chromium (Debian's `chromium`, installed by scripts/test.sh) renders it and dumps the DOM it parsed.
final class ReportChromiumTests: XCTestCase {
    func scratch() throws -> String { try temporaryFolder("report") }

    func chromium() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/chromium"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("no chromium binary on PATH (scripts/test.sh installs Debian's chromium)")
    }

    /// A finished run of 2 folds × 3 epochs × 5 steps, written in the run-folder format of the issue
    /// (independently of the Train types, which RunReportTests checks the reader against).
    func writeRunFolder(_ path: String) throws {
        func line(_ object: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
        }
        var steps = "", metrics = ""
        var summaryFolds: [[String: Any]] = []
        for fold in 0..<2 {
            let speakers = fold == 0 ? ["george", "jackson"] : ["nicolas", "theo"]
            var validation: [String: Any] = [:]
            for epoch in 0..<3 {
                for stepInEpoch in 0..<5 {
                    let step = epoch * 5 + stepInEpoch
                    steps += try line(["fold": fold, "epoch": epoch, "step": step, "loss": 0.7 * pow(0.75, Double(step)) + 0.005,
                                       "learning_rate": 0.001 * (1 + cos(Double.pi * Double(step) / 15)) / 2])
                }
                // 50 clips per digit; digit d is right 30 + 5·epoch + d times, else taken for d + 1.
                let confusion = (0..<10).map { digit in
                    (0..<10).map { column in column == digit ? 30 + 5 * epoch + digit : column == (digit + 1) % 10 ? 20 - 5 * epoch - digit : 0 }
                }
                let perDigit = (0..<10).map { Double(confusion[$0][$0]) / 50 }
                let accuracy = perDigit.reduce(0, +) / 10
                validation = ["clips": 500, "accuracy": accuracy, "macro_roc_auc": 0.9 + 0.03 * Double(epoch) + 0.01 * Double(fold),
                              "confusion": confusion, "per_digit_accuracy": perDigit,
                              "per_speaker_accuracy": [speakers[0]: accuracy - 0.05, speakers[1]: accuracy + 0.05]]
                metrics += try line(["fold": fold, "epoch": epoch, "step": epoch * 5 + 5, "train_loss": 0.4 / Double(epoch + 1),
                                     "learning_rate": 0.0005, "samples_per_second": 180 + 20 * Double(epoch) + 5 * Double(fold),
                                     "validation": validation])
            }
            summaryFolds.append(["fold": fold, "validation_speakers": speakers, "checkpoint": "\(path)/fold-\(fold)/final.ckpt",
                                 "metrics": validation])
        }
        try steps.write(toFile: path + "/steps.jsonl", atomically: true, encoding: .utf8)
        try metrics.write(toFile: path + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let summary: [String: Any] = ["experiment_name": "chromium-check", "ranks": 2, "seconds": 93.5, "folds": summaryFolds,
                                      "accuracy_mean": 0.89, "accuracy_std": 0.0, "macro_roc_auc_mean": 0.965, "macro_roc_auc_std": 0.005]
        try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: path + "/summary.json"))
        try "experiment_name: chromium-check\narchitecture:\n    backbone: resnet18\n".write(toFile: path + "/config.yaml", atomically: true, encoding: .utf8)
    }

    /// Width and height from the IHDR chunk, which a PNG must start with; nil if it is not a PNG.
    func pngSize(_ path: String) -> (width: Int, height: Int)? {
        guard let data = FileManager.default.contents(atPath: path), data.count > 24 else { return nil }
        let bytes = [UInt8](data.prefix(24))
        guard bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], bytes[12..<16] == [0x49, 0x48, 0x44, 0x52] else { return nil }
        let bigEndian = { (offset: Int) in bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (bigEndian(16), bigEndian(20))
    }

    func chromiumArguments(_ chromium: String, profile: String) -> [String] {
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile)"]
    }

    func testChromiumRendersTheReportWithEveryChart() throws {
        let chromium = try chromium()
        let root = try scratch()
        let run = root + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try writeRunFolder(run)

        let report = try runProcess([try digitsDistBinary(), "report", run], timeout: 60)
        XCTAssertEqual(report.status, 0, report.summary)
        XCTAssertEqual(report.stdout, run + "/report.html\n")

        // The DOM Chromium parsed holds every chart as SVG with drawn paths, cells and bars.
        let chrome = chromiumArguments(chromium, profile: root + "/profile")
        let dump = try runProcess(chrome + ["--dump-dom", "file://\(run)/report.html"], timeout: 120)
        XCTAssertEqual(dump.status, 0, dump.summary)
        let dom = dump.stdout
        for id in ["loss-chart", "lr-chart", "accuracy-chart", "auc-chart", "confusion-chart", "digit-chart", "speaker-chart", "throughput-chart"] {
            XCTAssertTrue(dom.contains("id=\"\(id)\""), "\(id) missing from the DOM")
        }
        let paths = dom.components(separatedBy: "<path class=\"series\"").dropFirst()
        XCTAssertEqual(paths.count, 10, "two folds in each of the five line charts")
        for path in paths {
            let d = path.components(separatedBy: "d=\"").dropFirst().first?.prefix { $0 != "\"" } ?? ""
            XCTAssertTrue(d.hasPrefix("M") && d.contains("L"), "an empty series path: \(path.prefix(120))")
        }
        XCTAssertTrue(dom.contains("data-points=\"30\" data-series=\"2\""), "30 steps in the loss and learning-rate charts")
        XCTAssertEqual(dom.components(separatedBy: "<rect class=\"cell\"").count - 1, 100)
        XCTAssertEqual(dom.components(separatedBy: "<rect class=\"bar\"").count - 1, 10 + 4, "10 digits and 4 speakers")
        XCTAssertEqual(dom.components(separatedBy: "<tr class=\"fold-row\">").count - 1, 2)
        XCTAssertTrue(dom.contains("0.9650 ± 0.0050"), "the summary's mean ± std")

        // The screenshot has the requested size and much more in it than a blank page of the same size.
        let screenshot = root + "/report.png", blankShot = root + "/blank.png"
        let shot = try runProcess(chrome + ["--screenshot=\(screenshot)", "--window-size=1200,3000", "file://\(run)/report.html"], timeout: 120)
        XCTAssertEqual(shot.status, 0, shot.summary)
        try "<!DOCTYPE html><html><body></body></html>".write(toFile: root + "/blank.html", atomically: true, encoding: .utf8)
        let blank = try runProcess(chrome + ["--screenshot=\(blankShot)", "--window-size=1200,3000", "file://\(root)/blank.html"], timeout: 120)
        XCTAssertEqual(blank.status, 0, blank.summary)
        let size = try XCTUnwrap(pngSize(screenshot), "the screenshot is not a PNG")
        XCTAssertEqual(size.width, 1200)
        XCTAssertEqual(size.height, 3000)
        XCTAssertNotNil(pngSize(blankShot))
        let bytes = { (path: String) in (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        XCTAssertGreaterThan(bytes(screenshot), 5 * bytes(blankShot),
                             "report \(bytes(screenshot)) bytes vs blank page \(bytes(blankShot)) bytes")
    }

    func testReportOfAMissingFolderFailsWithOneLine() throws {
        let missing = try scratch() + "/absent"
        let result = try runProcess([try digitsDistBinary(), "report", missing], timeout: 60)
        XCTAssertEqual(result.status, 1, result.summary)
        XCTAssertEqual(result.stderr, "digits-dist: error: \(missing): no such run folder\n")
    }
}
