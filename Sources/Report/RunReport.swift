import Foundation
import Train

/// `digits-dist report`: turns a run folder into one self-contained `report.html` (inline CSS and SVG,
/// nothing fetched), so a run can be judged, mailed or archived without the tools that made it.
public enum RunReport {
    /// What a run folder holds, read back with the types `digits-dist train` wrote it with.
    struct Record {
        var steps: [RunOutputs.StepRecord]
        var epochs: [RunOutputs.EpochRecord]
        /// Absent while a run is still in progress.
        var summary: RunOutputs.Summary?
        var configYAML: String?
    }

    /// Reads `runDirectory` and writes `runDirectory/report.html`; returns the report's path.
    @discardableResult
    public static func write(runDirectory: String) throws -> String {
        let record = try read(runDirectory: runDirectory)
        let path = runDirectory + "/report.html"
        do {
            try html(record, runDirectory: runDirectory).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TrainingError("\(path): cannot be written (\(error.localizedDescription))")
        }
        return path
    }

    static func read(runDirectory: String) throws -> Record {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainingError("\(runDirectory): no such run folder")
        }
        let stepsPath = runDirectory + "/steps.jsonl", metricsPath = runDirectory + "/metrics.jsonl"
        let summaryPath = runDirectory + "/summary.json", configPath = runDirectory + "/config.yaml"
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }
        guard exists(stepsPath) || exists(metricsPath) else {
            throw TrainingError("\(runDirectory): not a run folder (no metrics.jsonl or steps.jsonl, which digits-dist train writes)")
        }
        let steps: [RunOutputs.StepRecord] = exists(stepsPath) ? try jsonLines(stepsPath, kind: "step record") : []
        let epochs: [RunOutputs.EpochRecord] = exists(metricsPath) ? try jsonLines(metricsPath, kind: "validation record") : []
        guard !steps.isEmpty || !epochs.isEmpty else {
            throw TrainingError("\(runDirectory): no metrics recorded yet (metrics.jsonl and steps.jsonl are empty)")
        }
        for (index, epoch) in epochs.enumerated() {
            if let confusion = epoch.validation?.confusion, !isDigitMatrix(confusion) {
                throw TrainingError("\(metricsPath):\(index + 1): the confusion matrix is not 10 × 10")
            }
        }
        var summary: RunOutputs.Summary?
        if exists(summaryPath) {
            summary = try decode(RunOutputs.Summary.self, from: try contents(summaryPath), at: summaryPath, kind: "run summary")
            for fold in summary?.folds ?? [] where fold.metrics.map({ !isDigitMatrix($0.confusion) }) ?? false {
                throw TrainingError("\(summaryPath): the confusion matrix of fold \(fold.fold.map(String.init) ?? "-") is not 10 × 10")
            }
        }
        let configYAML = exists(configPath) ? String(decoding: try contents(configPath), as: UTF8.self) : nil
        return Record(steps: steps, epochs: epochs, summary: summary, configYAML: configYAML)
    }

    static func isDigitMatrix(_ matrix: [[Int]]) -> Bool {
        matrix.count == 10 && matrix.allSatisfy { $0.count == 10 }
    }

    static func contents(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError("\(path): cannot be read") }
        return data
    }

    /// One `T` per non-empty line; a bad line is reported by its number.
    static func jsonLines<T: Decodable>(_ path: String, kind: String) throws -> [T] {
        let lines = try contents(path).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        return try lines.enumerated().compactMap { index, line in
            line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) ? nil
                : try decode(T.self, from: Data(line), at: "\(path):\(index + 1)", kind: kind)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, at location: String, kind: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw TrainingError("\(location): not a \(kind) (\(reason(error)))")
        }
    }

    /// A one-line reason: the JSON key path and what was wrong there.
    static func reason(_ error: DecodingError) -> String {
        func keyPath(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing \"\(([keyPath(context)] + [key.stringValue]).filter { !$0.isEmpty }.joined(separator: "."))\""
        case .typeMismatch(let type, let context):
            return "\"\(keyPath(context))\" has the wrong type (expected \(type))"
        case .valueNotFound(let type, let context):
            return "\"\(keyPath(context))\" is null, expected a \(type)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "bad value at \"\(keyPath(context))\""
        @unknown default:
            return "undecodable"
        }
    }

    // MARK: what the report shows

    /// Folds in order (nil, a run on `--val-speakers`, first); a fold's position picks its colour.
    static func folds(_ record: Record) -> [Int?] {
        let all = Set(record.steps.map(\.fold) + record.epochs.map(\.fold) + (record.summary?.folds.map(\.fold) ?? []))
        return all.sorted { ($0 ?? -1) < ($1 ?? -1) }
    }

    static func name(_ fold: Int?) -> String { fold.map { "fold \($0)" } ?? "run" }

    /// Per fold: summary.json's final metrics when the run has finished, else the newest validation.
    static func finalMetrics(_ record: Record, fold: Int?) -> ClassificationMetrics? {
        if let summary = record.summary, let entry = summary.folds.first(where: { $0.fold == fold }) { return entry.metrics }
        return record.epochs.filter { $0.fold == fold && $0.validation != nil }.max { $0.step < $1.step }?.validation
    }

    /// At most about `limit` points: beyond that, means of consecutive runs of `stride` points (a long
    /// run's 50 000 steps per fold would make a multi-megabyte path no screen can show anyway).
    static func thinned(_ points: [(x: Double, y: Double)], limit: Int) -> (points: [(x: Double, y: Double)], stride: Int) {
        guard points.count > limit else { return (points, 1) }
        let stride = (points.count + limit - 1) / limit
        let means = Swift.stride(from: 0, to: points.count, by: stride).map { start in
            let group = points[start..<min(points.count, start + stride)]
            let count = Double(group.count)
            return (x: group.reduce(0) { $0 + $1.x } / count, y: group.reduce(0) { $0 + $1.y } / count)
        }
        return (means, stride)
    }

    static let stepChartLimit = 1500

    static func html(_ record: Record, runDirectory: String) -> String {
        let folds = folds(record)
        let color = { (fold: Int?) in SVGPlot.palette[(folds.firstIndex(of: fold) ?? 0) % SVGPlot.palette.count] }
        let e = SVGPlot.escape

        func stepSeries(_ value: (RunOutputs.StepRecord) -> Double) -> (series: [SVGPlot.Series], stride: Int) {
            var stride = 1
            let series = folds.map { fold -> SVGPlot.Series in
                let points = record.steps.filter { $0.fold == fold }.sorted { $0.step < $1.step }.map { (x: Double($0.step), y: value($0)) }
                let thin = thinned(points, limit: stepChartLimit)
                stride = max(stride, thin.stride)
                return SVGPlot.Series(name: name(fold), color: color(fold), points: thin.points)
            }
            return (series, stride)
        }
        func epochSeries(_ value: (RunOutputs.EpochRecord) -> Double?) -> [SVGPlot.Series] {
            folds.map { fold in
                let points = record.epochs.filter { $0.fold == fold }.sorted { $0.epoch < $1.epoch }
                    .compactMap { epoch in value(epoch).map { (x: Double(epoch.epoch + 1), y: $0) } }
                return SVGPlot.Series(name: name(fold), color: color(fold), points: points)
            }
        }
        func averagedNote(_ stride: Int) -> String { stride > 1 ? " (means of \(stride) steps)" : "" }

        let loss = stepSeries { Double($0.loss) }
        let learningRate = stepSeries { Double($0.learning_rate) }
        let stepAxis = SVGPlot.Axis(label: "step", integer: true, includesZero: true)
        let epochAxis = SVGPlot.Axis(label: "epoch", integer: true)

        let finals = folds.compactMap { finalMetrics(record, fold: $0) }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for metrics in finals {
            for row in 0..<10 { for column in 0..<10 { confusion[row][column] += metrics.confusion[row][column] } }
        }
        let digitBars: [(label: String, value: Double)] = (0..<10).compactMap { digit in
            let total = confusion[digit].reduce(0, +)
            return total > 0 ? ("digit \(digit)", Double(confusion[digit][digit]) / Double(total)) : nil
        }
        let speakerAccuracy = finals.reduce(into: [String: Double]()) { $0.merge($1.perSpeakerAccuracy) { $1 } }
        let speakerBars = speakerAccuracy.sorted { $0.key < $1.key }.map { (label: $0.key, value: $0.value) }

        let charts = [
            SVGPlot.lineChart(id: "loss-chart", title: "Training loss per step" + averagedNote(loss.stride), x: stepAxis,
                              y: SVGPlot.Axis(label: "loss", scale: .logarithmic), series: loss.series),
            SVGPlot.lineChart(id: "lr-chart", title: "Learning rate per step" + averagedNote(learningRate.stride), x: stepAxis,
                              y: SVGPlot.Axis(label: "learning rate", includesZero: true), series: learningRate.series),
            SVGPlot.lineChart(id: "accuracy-chart", title: "Validation accuracy per epoch", x: epochAxis,
                              y: SVGPlot.Axis(label: "accuracy"), series: epochSeries { $0.validation?.accuracy }),
            SVGPlot.lineChart(id: "auc-chart", title: "Validation macro ROC-AUC per epoch", x: epochAxis,
                              y: SVGPlot.Axis(label: "macro ROC-AUC"), series: epochSeries { $0.validation?.macroROCAUC }),
            SVGPlot.heatMap(id: "confusion-chart", title: "Confusion matrix" + (finals.count > 1 ? ", summed over \(finals.count) folds" : ""),
                            counts: confusion, labels: (0..<10).map(String.init), rowTitle: "true digit", columnTitle: "predicted digit"),
            SVGPlot.barChart(id: "digit-chart", title: "Accuracy per digit", bars: digitBars, valueLabel: "accuracy", maximum: 1,
                             color: SVGPlot.palette[2]),
            SVGPlot.barChart(id: "speaker-chart", title: "Accuracy per validation speaker", bars: speakerBars,
                             valueLabel: "accuracy", maximum: 1),
            SVGPlot.lineChart(id: "throughput-chart", title: "Training throughput per epoch", x: epochAxis,
                              y: SVGPlot.Axis(label: "samples / s", includesZero: true), series: epochSeries { $0.samples_per_second }),
        ]

        let experiment = record.summary?.experiment_name ?? URL(fileURLWithPath: runDirectory).lastPathComponent
        // One fold has no spread to show ("0.963 ± 0.000" would claim one).
        let spread = { (pair: (Double?, Double?)) in (pair.0, finals.count > 1 ? pair.1 : nil) }
        let accuracy = spread(record.summary.map { ($0.accuracy_mean, $0.accuracy_std) }
            ?? RunOutputs.meanAndStandardDeviation(finals.map(\.accuracy)))
        let auc = spread(record.summary.map { ($0.macro_roc_auc_mean, $0.macro_roc_auc_std) }
            ?? RunOutputs.meanAndStandardDeviation(finals.compactMap(\.macroROCAUC)))
        let throughputs = record.epochs.map(\.samples_per_second).sorted()
        var tiles = [
            ("Accuracy", meanStd(accuracy, digits: 3)),
            ("Macro ROC-AUC", meanStd(auc, digits: 3)),
            ("Folds", folds == [nil] ? "1 (fixed split)" : "\(folds.count)"),
            ("Steps", "\(record.steps.count)"),
            ("Median throughput", throughputs.isEmpty ? "–" : String(format: "%.0f samples/s", throughputs[throughputs.count / 2])),
        ]
        if let summary = record.summary {
            tiles.append(("Wall time · \(summary.ranks) rank\(summary.ranks == 1 ? "" : "s")", Log.duration(summary.seconds)))
        }

        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(experiment)) · digits-dist report</title>
            <style>\(css)</style>
            </head>
            <body>
            <main>
            <header>
            <h1>\(e(experiment))</h1>
            <p class="subtitle">digits-dist training report · \(e(runDirectory))</p>
            </header>

            """
        if record.summary == nil {
            page += "<p class=\"notice\" id=\"in-progress\">No summary.json yet: the run is still in progress or was stopped. "
                + "The report shows what steps.jsonl and metrics.jsonl hold so far.</p>\n"
        }
        page += "<section class=\"tiles\">\n"
        for (label, value) in tiles {
            page += "<div class=\"tile\"><div class=\"label\">\(e(label))</div><div class=\"value\">\(e(value))</div></div>\n"
        }
        page += "</section>\n<section class=\"charts\">\n"
        for chart in charts { page += "<figure class=\"card\">\n\(chart)</figure>\n" }
        page += "</section>\n"
        page += foldTable(record, folds: folds, accuracy: accuracy, auc: auc)
        if let configYAML = record.configYAML {
            page += "<details class=\"card\" id=\"config\"><summary>Resolved configuration (config.yaml)</summary>\n"
                + "<pre>\(e(configYAML))</pre></details>\n"
        }
        page += "<footer>Written by <code>digits-dist report</code> from steps.jsonl, metrics.jsonl"
            + (record.summary == nil ? "" : ", summary.json") + (record.configYAML == nil ? "" : " and config.yaml") + ".</footer>\n"
        return page + "</main>\n</body>\n</html>\n"
    }

    /// The k-fold table: one row per fold and the mean ± standard deviation over folds.
    /// With a test set (`dataset.test_dataframe`), two more columns: its accuracy with each fold's final and
    /// best models.
    static func foldTable(_ record: Record, folds: [Int?], accuracy: (Double?, Double?), auc: (Double?, Double?)) -> String {
        let e = SVGPlot.escape
        let tests = record.summary?.folds.contains { $0.test != nil } ?? false
        var table = """
            <section class="card">
            <h2>K-fold results</h2>
            <table id="kfold-table">
            <thead><tr><th>Fold</th><th>Validation speakers</th><th class="num">Clips</th><th class="num">Epochs validated</th>\
            <th class="num">Accuracy</th><th class="num">Macro ROC-AUC</th>
            """
        table += (tests ? "<th class=\"num\">Test accuracy (final)</th><th class=\"num\">Test accuracy (best)</th>" : "")
            + "</tr></thead>\n<tbody>\n"
        func testCells(_ scores: RunOutputs.TestScores?) -> String {
            tests ? "<td class=\"num\">\(fixed(scores?.final?.accuracy))</td><td class=\"num\">\(fixed(scores?.best?.accuracy))</td>" : ""
        }
        for fold in folds {
            let metrics = finalMetrics(record, fold: fold)
            let speakers = record.summary?.folds.first { $0.fold == fold }?.validation_speakers
                ?? metrics.map { $0.perSpeakerAccuracy.keys.sorted() } ?? []
            let validations = record.epochs.filter { $0.fold == fold && $0.validation != nil }.count
            table += "<tr class=\"fold-row\"><td>\(name(fold))</td><td>\(e(speakers.joined(separator: ", ")))</td>"
                + "<td class=\"num\">\(metrics.map { "\($0.clips)" } ?? "–")</td><td class=\"num\">\(validations)</td>"
                + "<td class=\"num\">\(fixed(metrics?.accuracy))</td><td class=\"num\">\(fixed(metrics?.macroROCAUC))</td>"
                + testCells(record.summary?.folds.first { $0.fold == fold }?.test) + "</tr>\n"
        }
        let testSpread = (record.summary?.test_accuracy_mean, folds.count > 1 ? record.summary?.test_accuracy_std : nil)
        table += "<tr class=\"mean-row\"><td>mean ± std</td><td></td><td></td><td></td>"
            + "<td class=\"num\">\(meanStd(accuracy))</td><td class=\"num\">\(meanStd(auc))</td>"
            + (tests ? "<td class=\"num\">\(meanStd(testSpread))</td><td></td>" : "") + "</tr>\n"
        return table + "</tbody>\n</table>\n</section>\n"
    }

    static func fixed(_ value: Double?, digits: Int = 4) -> String {
        value.map { String(format: "%.\(digits)f", $0) } ?? "–"
    }

    static func meanStd(_ pair: (Double?, Double?), digits: Int = 4) -> String {
        guard let mean = pair.0 else { return "–" }
        return fixed(mean, digits: digits) + (pair.1.map { " ± " + fixed($0, digits: digits) } ?? "")
    }

    static let css = """
        :root { color-scheme: light; }
        body { margin: 0; background: #f3f5f8; color: #1f2933;
               font: 14px/1.45 "DejaVu Sans", "Liberation Sans", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
        main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 40px; }
        h1 { font-size: 26px; margin: 0 0 2px; }
        h2 { font-size: 16px; margin: 0 0 10px; }
        .subtitle { color: #52606d; margin: 0; }
        .notice { background: #fff8e1; border: 1px solid #f0c36d; border-radius: 6px; padding: 8px 12px; }
        .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin: 18px 0; }
        .tile { background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; padding: 10px 14px; }
        .tile .label { font-size: 11px; color: #616e7c; text-transform: uppercase; letter-spacing: 0.05em; }
        .tile .value { font-size: 18px; font-weight: 600; margin-top: 2px; }
        .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; margin-bottom: 16px; }
        .card { background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; padding: 12px 14px; margin: 0 0 16px; }
        .charts .card { margin: 0; }
        svg.chart { display: block; width: 100%; height: auto; }
        svg text { font-family: inherit; font-size: 11px; fill: #3e4c59; }
        svg .title { font-size: 15px; font-weight: 600; fill: #1f2933; }
        svg .axis-label { font-size: 12px; fill: #52606d; }
        svg .legend { font-size: 12px; }
        svg .gridline { stroke: #e4e7eb; stroke-width: 1; }
        svg .axis, svg .tick-mark { stroke: #9aa5b1; stroke-width: 1; }
        svg .count { font-size: 10px; fill: #1f2933; }
        svg .count.on-dark { fill: #ffffff; }
        svg .value { font-size: 10px; fill: #52606d; }
        svg .empty { font-size: 13px; fill: #9aa5b1; }
        table { border-collapse: collapse; width: 100%; }
        th, td { padding: 6px 10px; border-bottom: 1px solid #e4e7eb; text-align: left; }
        th { font-size: 12px; color: #616e7c; text-transform: uppercase; letter-spacing: 0.04em; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.mean-row td { font-weight: 600; border-top: 2px solid #9aa5b1; border-bottom: none; }
        summary { cursor: pointer; font-weight: 600; }
        pre { background: #f8fafc; border: 1px solid #e4e7eb; border-radius: 6px; padding: 12px; overflow: auto;
              font: 12px/1.4 "DejaVu Sans Mono", "Liberation Mono", monospace; }
        footer { color: #7b8794; font-size: 12px; }
        """
}
