@testable import Report
@testable import Train
import Foundation
import XCTest

final class RunReportTests: XCTestCase {
    static let stepsPerEpoch = 4, epochs = 3
    static let speakers = [0: ["alice", "o'<brien>"], 1: ["carol", "dave"]]

    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/digits-dist-report-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Fold `fold`, epoch `epoch`: 40 clips, 4 per digit; digit d is right (4 - (d + epoch + fold) % 3)
    /// times, its errors predicted as the next digit.
    static func metrics(fold: Int, epoch: Int) -> ClassificationMetrics {
        var probabilities: [Float] = [], labels: [Int] = [], speakers: [String] = []
        for digit in 0..<10 {
            let right = 4 - (digit + epoch + fold) % 3
            for clip in 0..<4 {
                let predicted = clip < right ? digit : (digit + 1) % 10
                probabilities += (0..<10).map { $0 == predicted ? 0.6 + Float(clip) * 0.05 : 0.04 }
                labels.append(digit)
                speakers.append(Self.speakers[fold]![clip % 2])
            }
        }
        return ClassificationMetrics(probabilities: probabilities, labels: labels, speakers: speakers)
    }

    /// A finished 2-fold × 3-epoch run, written with the writer `digits-dist train` uses.
    func makeRunFolder() throws -> (path: String, summary: RunOutputs.Summary) {
        let path = try temporaryDirectory()
        let outputs = try RunOutputs(directory: path, fresh: true)
        var folds: [RunOutputs.FoldSummary] = []
        for fold in 0..<2 {
            var step = 0
            for epoch in 0..<Self.epochs {
                for _ in 0..<Self.stepsPerEpoch {
                    try outputs.recordStep(fold: fold, epoch: epoch, step: step, loss: 0.7 * pow(0.8, Float(step)) + 0.01 * Float(fold),
                                           learningRate: 1e-3 * (1 - Float(step) / 12))
                    step += 1
                }
                try outputs.recordEpoch(fold: fold, epoch: epoch, step: step, trainLoss: 0.5 / Double(epoch + 1), learningRate: 1e-3,
                                        samplesPerSecond: 250 + 10 * Double(epoch + fold), metrics: Self.metrics(fold: fold, epoch: epoch))
            }
            folds.append(.init(fold: fold, validation_speakers: Self.speakers[fold]!, checkpoint: "\(path)/fold-\(fold)/final.ckpt",
                               metrics: Self.metrics(fold: fold, epoch: Self.epochs - 1)))
        }
        let summary = try outputs.writeSummary(experiment: "report-test", ranks: 2, folds: folds, seconds: 75)
        try "experiment_name: report-test\ntraining:\n    epochs: 3\n".write(toFile: path + "/config.yaml", atomically: true, encoding: .utf8)
        return (path, summary)
    }

    func report(_ path: String) throws -> String {
        let written = try RunReport.write(runDirectory: path)
        XCTAssertEqual(written, path + "/report.html")
        return try String(contentsOfFile: written, encoding: .utf8)
    }

    /// The `<svg …>` element with this id, through its closing tag.
    func chart(_ id: String, in html: String) throws -> Substring {
        let start = try XCTUnwrap(html.range(of: "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id)\""), "no chart \(id)")
        let end = try XCTUnwrap(html.range(of: "</svg>", range: start.upperBound..<html.endIndex))
        return html[start.lowerBound..<end.upperBound]
    }

    func occurrences(of needle: String, in text: some StringProtocol) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    /// Every `data-count="N"` in the text, in order.
    func dataCounts(in text: some StringProtocol) -> [Int] {
        text.components(separatedBy: "data-count=\"").dropFirst().compactMap { Int($0.prefix { $0 != "\"" }) }
    }

    func testReportHasEveryChartWithTheRecordedPoints() throws {
        let (path, summary) = try makeRunFolder()
        let html = try report(path)
        let stepPoints = 2 * Self.epochs * Self.stepsPerEpoch
        for (id, points) in [("loss-chart", stepPoints), ("lr-chart", stepPoints), ("accuracy-chart", 6),
                             ("auc-chart", 6), ("throughput-chart", 6)] {
            let svg = try chart(id, in: html)
            XCTAssertTrue(svg.contains("data-points=\"\(points)\" data-series=\"2\""), "\(id): \(svg.prefix(200))")
            // Each fold's line: one moveto and a lineto per further point.
            XCTAssertEqual(occurrences(of: "<path class=\"series\"", in: svg), 2, id)
            XCTAssertEqual(occurrences(of: "L", in: svg.components(separatedBy: "d=\"").dropFirst().filter { $0.hasPrefix("M") }
                .map { $0.prefix { $0 != "\"" } }.joined()), points - 2, id)
            XCTAssertTrue(svg.contains(">fold 0</text>") && svg.contains(">fold 1</text>"), "\(id) has a legend")
        }
        XCTAssertTrue(try chart("loss-chart", in: html).contains("loss (log scale)"))

        // The confusion matrix is the sum of both folds' final validations: 100 cells, 80 clips.
        let confusion = try chart("confusion-chart", in: html)
        XCTAssertTrue(confusion.contains("data-cells=\"100\""))
        XCTAssertEqual(occurrences(of: "<rect class=\"cell\"", in: confusion), 100)
        let counts = dataCounts(in: confusion)
        let expected = summary.folds.map { $0.metrics!.confusion.flatMap { $0 } }
        XCTAssertEqual(counts, zip(expected[0], expected[1]).map { $0 + $1 })
        XCTAssertEqual(counts.reduce(0, +), 80)
        for digit in 0..<10 { XCTAssertTrue(confusion.contains(">\(digit)</text>"), "digit label \(digit)") }

        let speakers = try chart("speaker-chart", in: html)
        XCTAssertTrue(speakers.contains("data-bars=\"4\""))
        XCTAssertEqual(occurrences(of: "<rect class=\"bar\"", in: speakers), 4)
        XCTAssertTrue(speakers.contains("o&#39;&lt;brien&gt;"), "speaker names are escaped")
        XCTAssertFalse(html.contains("<brien>"))
        XCTAssertEqual(occurrences(of: "<rect class=\"bar\"", in: try chart("digit-chart", in: html)), 10)

        // Titles and axis labels are SVG text.
        XCTAssertTrue(html.contains("<text class=\"title\" x=\"14\" y=\"22\">Training loss per step</text>"))
        XCTAssertTrue(html.contains(">predicted digit</text>") && html.contains(">true digit</text>"))

        // Self-contained: no URL but the SVG namespace, no scripts, no external resources.
        XCTAssertEqual(occurrences(of: "http", in: html), occurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", in: html))
        XCTAssertEqual(occurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", in: html), 8)
        XCTAssertFalse(html.contains("<script") || html.contains("<link") || html.contains("src="))
        XCTAssertTrue(html.contains("<details") && html.contains("epochs: 3"))
    }

    func testFoldTableHasOneRowPerFoldAndTheSummaryMean() throws {
        let (path, summary) = try makeRunFolder()
        let html = try report(path)
        let tableStart = try XCTUnwrap(html.range(of: "<table id=\"kfold-table\">"))
        let table = html[tableStart.lowerBound..<html.range(of: "</table>")!.upperBound]
        XCTAssertEqual(occurrences(of: "<tr class=\"fold-row\">", in: table), 2)
        XCTAssertEqual(occurrences(of: "<tr class=\"mean-row\">", in: table), 1)
        for fold in summary.folds {
            let metrics = try XCTUnwrap(fold.metrics)
            XCTAssertTrue(table.contains(String(format: "<td class=\"num\">%.4f</td><td class=\"num\">%.4f</td>",
                                                metrics.accuracy, try XCTUnwrap(metrics.macroROCAUC))), "fold \(fold.fold!)")
        }
        XCTAssertTrue(table.contains("<td>alice, o&#39;&lt;brien&gt;</td>"))
        let mean = try XCTUnwrap(summary.accuracy_mean), std = try XCTUnwrap(summary.accuracy_std)
        XCTAssertGreaterThan(std, 0, "the folds differ, so the ± is tested")
        XCTAssertTrue(table.contains(String(format: "%.4f ± %.4f", mean, std)), String(table))
    }

    /// A single fold has no spread: its mean is shown without "± 0.0000".
    func testOneFoldShowsNoSpread() throws {
        let path = try temporaryDirectory()
        let outputs = try RunOutputs(directory: path, fresh: true)
        try outputs.recordStep(fold: 0, epoch: 0, step: 0, loss: 0.5, learningRate: 1e-3)
        try outputs.recordEpoch(fold: 0, epoch: 0, step: 1, trainLoss: 0.5, learningRate: 1e-3, samplesPerSecond: 250,
                                metrics: Self.metrics(fold: 0, epoch: 0))
        try outputs.writeSummary(experiment: "one-fold", ranks: 1, folds: [
            .init(fold: 0, validation_speakers: Self.speakers[0]!, checkpoint: path + "/fold-0/final.ckpt",
                  metrics: Self.metrics(fold: 0, epoch: 0))], seconds: 1)
        let html = try report(path)
        XCTAssertFalse(html.contains("± 0.0"), "a single fold must not claim a spread")
        XCTAssertTrue(html.contains(String(format: "%.4f", Self.metrics(fold: 0, epoch: 0).accuracy)))
    }

    /// A run still in progress: no summary.json; fold 1 has only its first epoch. The report is drawn from
    /// the jsonl files, with each fold's newest validation and the mean over those.
    func testWithoutSummaryTheReportUsesTheNewestValidations() throws {
        let (path, _) = try makeRunFolder()
        try FileManager.default.removeItem(atPath: path + "/summary.json")
        let outputs = try RunOutputs(directory: path, fresh: false)
        try outputs.forget(fold: 1, after: Self.stepsPerEpoch)
        let html = try report(path)
        XCTAssertTrue(html.contains("id=\"in-progress\""))
        XCTAssertTrue(try chart("accuracy-chart", in: html).contains("data-points=\"4\""))
        XCTAssertTrue(try chart("loss-chart", in: html).contains("data-points=\"\(Self.epochs * Self.stepsPerEpoch + Self.stepsPerEpoch)\""))
        let newest = [Self.metrics(fold: 0, epoch: 2), Self.metrics(fold: 1, epoch: 0)]
        let counts = dataCounts(in: try chart("confusion-chart", in: html))
        XCTAssertEqual(counts, zip(newest[0].confusion.flatMap { $0 }, newest[1].confusion.flatMap { $0 }).map { $0 + $1 })
        let (mean, std) = RunOutputs.meanAndStandardDeviation(newest.map(\.accuracy))
        XCTAssertTrue(html.contains(String(format: "<td class=\"num\">%.4f ± %.4f</td>", mean!, std!)))
        XCTAssertTrue(html.contains("<td>carol, dave</td>"), "speakers come from the per-speaker accuracies")
    }

    func testBadFoldersFailWithOneLineNamingThePath() throws {
        let root = try temporaryDirectory()
        func message(_ path: String) -> String {
            do {
                _ = try RunReport.write(runDirectory: path)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message(root + "/absent"), root + "/absent: no such run folder")
        XCTAssertEqual(message(root), root + ": not a run folder (no metrics.jsonl or steps.jsonl, which digits-dist train writes)")
        FileManager.default.createFile(atPath: root + "/metrics.jsonl", contents: Data())
        FileManager.default.createFile(atPath: root + "/steps.jsonl", contents: Data("\n".utf8))
        XCTAssertEqual(message(root), root + ": no metrics recorded yet (metrics.jsonl and steps.jsonl are empty)")
        try "{\"epoch\":0,\"learning_rate\":0.001,\"loss\":0.5,\"step\":0}\n{\"epoch\":0,\"loss\":0.4,\"step\":1}\n"
            .write(toFile: root + "/steps.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(message(root), root + "/steps.jsonl:2: not a step record (missing \"learning_rate\")")
        try "{\"epoch\":0,\"learning_rate\":0.001,\"loss\":0.5,\"step\":0}\n{\"epoch\":0,".write(toFile: root + "/steps.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(message(root), root + "/steps.jsonl:2: not a step record (not valid JSON)")

        let (run, _) = try makeRunFolder()
        var lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        lines[1] = lines[1].replacingOccurrences(of: "\"confusion\":[[", with: "\"confusion\":[[1],[")
        try lines.joined(separator: "\n").write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(message(run), run + "/metrics.jsonl:2: the confusion matrix is not 10 × 10")
        try "{\"experiment_name\": \"x\", \"ranks\": \"two\"}".write(toFile: run + "/summary.json", atomically: true, encoding: .utf8)
        lines[1] = lines[0]
        try lines.joined(separator: "\n").write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(message(run), run + "/summary.json: not a run summary (\"ranks\" has the wrong type (expected Int))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/report.html"))
    }

    func testLongSeriesAreThinnedToMeansOfConsecutiveSteps() {
        let points = (0..<3001).map { (x: Double($0), y: Double($0 % 3)) }
        let (thin, stride) = RunReport.thinned(points, limit: 1500)
        XCTAssertEqual(stride, 3)
        XCTAssertEqual(thin.count, 1001)
        XCTAssertEqual(thin[0].x, 1)
        XCTAssertEqual(thin[0].y, 1)
        XCTAssertEqual(thin[1000].x, 3000, "the last, shorter group")
        XCTAssertEqual(RunReport.thinned(Array(points.prefix(1500)), limit: 1500).points.count, 1500)
    }
}

final class SVGPlotTests: XCTestCase {
    func testLinearTicksAreRoundAndCoverTheData() {
        let scale = SVGPlot.ScaleMap(axis: .init(label: "accuracy"), values: [0.53, 0.97], pixels: 0...100)
        XCTAssertEqual(scale.ticks.count, 6)
        for (tick, expected) in zip(scale.ticks, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]) { XCTAssertEqual(tick, expected, accuracy: 1e-12) }
        XCTAssertEqual(scale(0.5), 0)
        XCTAssertEqual(scale(1.0), 100, accuracy: 1e-9)
        let withZero = SVGPlot.ScaleMap(axis: .init(label: "samples / s", includesZero: true), values: [230, 260], pixels: 0...1)
        XCTAssertEqual(withZero.ticks, [0, 50, 100, 150, 200, 250, 300])
        // Step axes span the data exactly, with whole-number ticks inside.
        let steps = SVGPlot.ScaleMap(axis: .init(label: "step", integer: true), values: [0, 619], pixels: 0...619, snapsToTicks: false)
        XCTAssertEqual(steps.ticks, [0, 100, 200, 300, 400, 500, 600])
        XCTAssertEqual(steps(619), 619)
        let epochs = SVGPlot.ScaleMap(axis: .init(label: "epoch", integer: true), values: [1, 3], pixels: 0...1, snapsToTicks: false)
        XCTAssertEqual(epochs.ticks, [1, 2, 3])
        let single = SVGPlot.ScaleMap(axis: .init(label: "lr"), values: [0.001, 0.001], pixels: 0...1)
        XCTAssertLessThan(single.lower, 0.001)
        XCTAssertGreaterThan(single.upper, 0.001)
    }

    func testLogarithmicTicksAreDecadesAndFallBackToLinear() {
        let log = SVGPlot.ScaleMap(axis: .init(label: "loss", scale: .logarithmic), values: [0.004, 0.7], pixels: 0...300, flipped: true)
        XCTAssertTrue(log.logarithmic)
        XCTAssertEqual(log.ticks.count, 4)
        for (tick, expected) in zip(log.ticks, [0.001, 0.01, 0.1, 1]) { XCTAssertEqual(tick, expected, accuracy: 1e-12) }
        XCTAssertEqual(log(0.01), 200, accuracy: 1e-9)
        XCTAssertEqual(log(0.1), 100, accuracy: 1e-9)
        let narrow = SVGPlot.ScaleMap(axis: .init(label: "loss", scale: .logarithmic), values: [0.02, 0.3], pixels: 0...1)
        XCTAssertEqual(narrow.ticks.map { SVGPlot.number($0) }, ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"])
        XCTAssertFalse(SVGPlot.ScaleMap(axis: .init(label: "loss", scale: .logarithmic), values: [0, 0.3], pixels: 0...1).logarithmic)
    }

    /// Two points at the corners of the data land on the corners of the plot area.
    func testLineChartMapsDataToThePlotArea() {
        let svg = SVGPlot.lineChart(id: "t", title: "T", x: .init(label: "x"), y: .init(label: "y"),
                                    series: [.init(name: "a", color: "#000", points: [(0, 0), (10, 1)])])
        let (left, right, top, bottom) = (SVGPlot.left, SVGPlot.chartWidth - SVGPlot.right, SVGPlot.top, SVGPlot.chartHeight - SVGPlot.bottom)
        XCTAssertTrue(svg.contains(String(format: "d=\"M%.1f,%.1fL%.1f,%.1f\"", left, bottom, right, top)), svg)
        let empty = SVGPlot.lineChart(id: "e", title: "E", x: .init(label: "x"), y: .init(label: "y"), series: [])
        XCTAssertTrue(empty.contains("data-points=\"0\"") && empty.contains("no data recorded yet"))
    }

    func testNumbersColoursAndEscaping() {
        XCTAssertEqual(SVGPlot.number(0.0005), "0.0005")
        XCTAssertEqual(SVGPlot.number(0.000025), "2.5e-5")
        XCTAssertEqual(SVGPlot.number(0.1 + 0.2), "0.3")
        XCTAssertEqual(SVGPlot.number(1200), "1200")
        XCTAssertEqual(SVGPlot.number(-0.5), "-0.5")
        XCTAssertEqual(SVGPlot.number(40000), "40000")
        XCTAssertEqual(SVGPlot.number(2.5e10), "2.5e10")
        XCTAssertEqual(SVGPlot.heatColor(0), "#ffffff")
        XCTAssertEqual(SVGPlot.heatColor(1), "#084594")
        XCTAssertEqual(SVGPlot.escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;")
    }
}
