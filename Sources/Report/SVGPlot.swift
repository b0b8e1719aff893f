import Foundation

/// The report's charts as inline SVG text: one line chart, one bar chart, one heat map, so the report
/// needs no JavaScript, no plotting library and nothing from the network. Every chart carries an `id`
/// and `data-` attributes (point, bar and cell counts) for tests, and `<title>` tooltips with the values.
enum SVGPlot {
    struct Series {
        var name: String
        var color: String
        /// (x, y) in data units, in drawing order.
        var points: [(x: Double, y: Double)]
    }

    struct Axis {
        enum Scale { case linear, logarithmic }
        var label: String
        /// Logarithmic falls back to linear when a value is not positive.
        var scale = Scale.linear
        /// Ticks on whole numbers only (epochs, steps).
        var integer = false
        /// The range starts at zero (throughput), instead of hugging the data.
        var includesZero = false
    }

    /// Distinct, colour-blind-friendly hues (Okabe–Ito, then Tableau), one per fold.
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9",
                          "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF"]

    static let chartWidth = 560.0
    static let chartHeight = 320.0
    /// Plot area inset: room for the title and legend above, tick labels and axis label left and below.
    static let left = 64.0, right = 18.0, top = 56.0, bottom = 46.0

    // MARK: line chart

    /// One line per series (with dots when there are few points), axis ticks, grid lines and a legend.
    static func lineChart(id: String, title: String, x: Axis, y: Axis, series: [Series]) -> String {
        let drawn = series.filter { !$0.points.isEmpty }
        let pointCount = drawn.reduce(0) { $0 + $1.points.count }
        var svg = open(id: id, title: title, height: chartHeight, attributes: "data-points=\"\(pointCount)\" data-series=\"\(drawn.count)\"")
        guard pointCount > 0 else { return svg + emptyNote(height: chartHeight) + "</svg>" }
        let (legendText, legendRows) = legend(drawn.map { ($0.name, $0.color) })
        svg += legendText
        let plotTop = top + 14 * Double(legendRows - 1)
        let xs = drawn.flatMap { $0.points.map(\.x) }, ys = drawn.flatMap { $0.points.map(\.y) }
        let xScale = ScaleMap(axis: x, values: xs, pixels: left...(chartWidth - right), snapsToTicks: false)
        let yScale = ScaleMap(axis: y, values: ys, pixels: plotTop...(chartHeight - bottom), flipped: true)
        svg += axes(xScale: xScale, yScale: yScale, x: x, y: y)
        for item in drawn {
            let path = item.points.enumerated().map { index, point in
                (index == 0 ? "M" : "L") + coordinate(xScale(point.x)) + "," + coordinate(yScale(point.y))
            }.joined()
            svg += "<path class=\"series\" data-name=\"\(escape(item.name))\" d=\"\(path)\" fill=\"none\" stroke=\"\(item.color)\" stroke-width=\"1.6\" stroke-linejoin=\"round\"/>\n"
            if item.points.count <= 60 {
                for point in item.points {
                    svg += "<circle cx=\"\(coordinate(xScale(point.x)))\" cy=\"\(coordinate(yScale(point.y)))\" r=\"3\" fill=\"\(item.color)\">"
                        + "<title>\(escape(item.name)): \(x.label) \(number(point.x)), \(y.label) \(number(point.y))</title></circle>\n"
                }
            }
        }
        return svg + "</svg>"
    }

    // MARK: bar chart

    /// Horizontal bars of fractions (labelled as percentages), one per label, the chart growing with
    /// their number so 60 speakers stay readable; the value axis runs from zero to `maximum`.
    static func barChart(id: String, title: String, bars: [(label: String, value: Double)], valueLabel: String,
                         maximum: Double, color: String = palette[0]) -> String {
        let rowHeight = 20.0, valueLabelWidth = 40.0
        let height = top + bottom + max(1, Double(bars.count)) * rowHeight
        var svg = open(id: id, title: title, height: height, attributes: "data-bars=\"\(bars.count)\"")
        guard !bars.isEmpty else { return svg + emptyNote(height: height) + "</svg>" }
        let labelWidth = min(160, 16 + 7 * Double(bars.map(\.label.count).max() ?? 0))
        let plotLeft = max(left, labelWidth)
        let scale = ScaleMap(axis: Axis(label: valueLabel, includesZero: true), values: [0, maximum],
                             pixels: plotLeft...(chartWidth - right - valueLabelWidth))
        let plotBottom = height - bottom
        for tick in scale.ticks {
            let px = coordinate(scale(tick))
            svg += "<line class=\"gridline\" x1=\"\(px)\" y1=\"\(coordinate(top))\" x2=\"\(px)\" y2=\"\(coordinate(plotBottom))\"/>\n"
            svg += "<text class=\"tick\" x=\"\(px)\" y=\"\(coordinate(plotBottom + 16))\" text-anchor=\"middle\">\(number(tick))</text>\n"
        }
        svg += axisLabel(valueLabel, x: (plotLeft + chartWidth - right - valueLabelWidth) / 2, y: height - 8)
        for (index, bar) in bars.enumerated() {
            let y = top + Double(index) * rowHeight
            let width = max(0, scale(min(bar.value, maximum)) - scale(0))
            svg += "<rect class=\"bar\" data-value=\"\(bar.value)\" x=\"\(coordinate(scale(0)))\" y=\"\(coordinate(y + 3))\" "
                + "width=\"\(coordinate(width))\" height=\"\(coordinate(rowHeight - 6))\" fill=\"\(color)\" rx=\"2\">"
                + "<title>\(escape(bar.label)): \(number(bar.value))</title></rect>\n"
            svg += "<text class=\"tick\" x=\"\(coordinate(plotLeft - 6))\" y=\"\(coordinate(y + rowHeight / 2 + 4))\" text-anchor=\"end\">\(escape(bar.label))</text>\n"
            svg += "<text class=\"value\" x=\"\(coordinate(scale(0) + width + 4))\" y=\"\(coordinate(y + rowHeight / 2 + 4))\">\(percent(bar.value))</text>\n"
        }
        svg += "<line class=\"axis\" x1=\"\(coordinate(scale(0)))\" y1=\"\(coordinate(top))\" x2=\"\(coordinate(scale(0)))\" y2=\"\(coordinate(plotBottom))\"/>\n"
        return svg + "</svg>"
    }

    // MARK: heat map

    /// A count matrix ([row][column]) as coloured cells with the count written in each; the colour is
    /// the count's share of its row, so a class with few clips still shows where its errors go.
    static func heatMap(id: String, title: String, counts: [[Int]], labels: [String], rowTitle: String, columnTitle: String) -> String {
        let n = labels.count
        let cell = 28.0
        let gridLeft = (chartWidth - cell * Double(n)) / 2 + 14, gridTop = top + 4
        let height = gridTop + cell * Double(n) + bottom
        var svg = open(id: id, title: title, height: height, attributes: "data-cells=\"\(n * n)\"")
        for row in 0..<n {
            let total = max(1, counts[row].reduce(0, +))
            for column in 0..<n {
                let count = counts[row][column]
                let share = Double(count) / Double(total)
                let x = gridLeft + Double(column) * cell, y = gridTop + Double(row) * cell
                svg += "<rect class=\"cell\" data-count=\"\(count)\" x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" width=\"\(cell)\" height=\"\(cell)\" "
                    + "fill=\"\(heatColor(share))\"><title>\(rowTitle) \(labels[row]), \(columnTitle) \(labels[column]): \(count) (\(percent(share)) of the row)</title></rect>\n"
                svg += "<text class=\"count\(share > 0.5 ? " on-dark" : "")\" x=\"\(coordinate(x + cell / 2))\" "
                    + "y=\"\(coordinate(y + cell / 2 + 4))\" text-anchor=\"middle\">\(count)</text>\n"
            }
            svg += "<text class=\"tick\" x=\"\(coordinate(gridLeft - 6))\" y=\"\(coordinate(gridTop + (Double(row) + 0.5) * cell + 4))\" text-anchor=\"end\">\(labels[row])</text>\n"
        }
        for column in 0..<n {
            svg += "<text class=\"tick\" x=\"\(coordinate(gridLeft + (Double(column) + 0.5) * cell))\" y=\"\(coordinate(gridTop + Double(n) * cell + 16))\" text-anchor=\"middle\">\(labels[column])</text>\n"
        }
        svg += axisLabel(columnTitle, x: gridLeft + cell * Double(n) / 2, y: height - 8)
        svg += axisLabel(rowTitle, x: gridLeft - 30, y: gridTop + cell * Double(n) / 2, vertical: true)
        return svg + "</svg>"
    }

    /// White → deep blue.
    static func heatColor(_ share: Double) -> String {
        let t = min(1, max(0, share))
        let (r, g, b) = (255 - t * (255 - 8), 255 - t * (255 - 69), 255 - t * (255 - 148))
        return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
    }

    // MARK: scales and ticks

    /// Data units → pixels over a "nice" domain that contains every value and ends on ticks.
    struct ScaleMap {
        let logarithmic: Bool
        let lower: Double, upper: Double
        let pixels: ClosedRange<Double>
        let flipped: Bool
        let ticks: [Double]

        /// `snapsToTicks`: the domain is widened to whole ticks (value axes); otherwise it spans the data
        /// exactly (step axes, so a run of 620 steps is not drawn on 0…800).
        init(axis: Axis, values: [Double], pixels: ClosedRange<Double>, flipped: Bool = false, snapsToTicks: Bool = true) {
            self.pixels = pixels
            self.flipped = flipped
            var low = values.min() ?? 0, high = values.max() ?? 1
            logarithmic = axis.scale == .logarithmic && low > 0
            if logarithmic {
                var lowDecade = floor(log10(low)), highDecade = ceil(log10(high))
                if highDecade == lowDecade { lowDecade -= 1 }
                lower = pow(10, lowDecade)
                upper = pow(10, highDecade)
                let multiples: [Double] = highDecade - lowDecade <= 2 ? [1, 2, 5] : [1]
                ticks = stride(from: lowDecade, through: highDecade, by: 1).flatMap { decade in
                    multiples.map { $0 * pow(10, decade) }
                }.filter { $0 <= pow(10, highDecade) * 1.0001 }
                return
            }
            if axis.includesZero { low = min(low, 0); high = max(high, 0) }
            if low == high {
                let pad = low == 0 ? 1 : abs(low) * 0.1
                low -= pad
                high += pad
            }
            var step = SVGPlot.niceStep(high - low, intervals: 5)
            if axis.integer { step = max(step, 1).rounded() }
            // Multiples of the step, so zero is exactly zero rather than 1e-17.
            let first = Int((low / step).rounded(snapsToTicks ? .down : .up))
            let last = Int((high / step).rounded(snapsToTicks ? .up : .down))
            lower = snapsToTicks ? Double(first) * step : low
            upper = snapsToTicks ? Double(last) * step : high
            ticks = (first...last).map { Double($0) * step }
        }

        func callAsFunction(_ value: Double) -> Double {
            let t = logarithmic ? (log10(value) - log10(lower)) / (log10(upper) - log10(lower))
                : (value - lower) / (upper - lower)
            let span = pixels.upperBound - pixels.lowerBound
            return flipped ? pixels.upperBound - t * span : pixels.lowerBound + t * span
        }
    }

    /// 1, 2 or 5 times a power of ten, the nearest to `span / intervals`: 4 to 8 ticks.
    static func niceStep(_ span: Double, intervals: Int) -> Double {
        let raw = span / Double(intervals)
        let magnitude = pow(10, floor(log10(raw)))
        let fraction = raw / magnitude
        return (fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10) * magnitude
    }

    // MARK: pieces

    /// The `<svg>` start tag and the title.
    static func open(id: String, title: String, height: Double, attributes: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id)\" class=\"chart\" \(attributes) viewBox=\"0 0 \(number(chartWidth)) \(number(height))\" "
            + "role=\"img\" aria-label=\"\(escape(title))\">\n"
            + "<text class=\"title\" x=\"14\" y=\"22\">\(escape(title))</text>\n"
    }

    static func emptyNote(height: Double) -> String {
        "<text class=\"empty\" x=\"\(number(chartWidth / 2))\" y=\"\(number(height / 2))\" text-anchor=\"middle\">no data recorded yet</text>\n"
    }

    static func axisLabel(_ label: String, x: Double, y: Double, vertical: Bool = false) -> String {
        let rotation = vertical ? " transform=\"rotate(-90 \(coordinate(x)) \(coordinate(y)))\"" : ""
        return "<text class=\"axis-label\" x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" text-anchor=\"middle\"\(rotation)>\(escape(label))</text>\n"
    }

    /// Swatches and names in rows under the title; returns the SVG and the number of rows.
    static func legend(_ entries: [(name: String, color: String)]) -> (String, Int) {
        var svg = ""
        var x = left, rows = 1
        for entry in entries {
            let width = 26 + 7 * Double(entry.name.count) + 14
            if x + width > chartWidth - right { x = left; rows += 1 }
            let y = 40 + 14 * Double(rows - 1)
            svg += "<line x1=\"\(coordinate(x))\" y1=\"\(coordinate(y - 4))\" x2=\"\(coordinate(x + 18))\" y2=\"\(coordinate(y - 4))\" stroke=\"\(entry.color)\" stroke-width=\"3\"/>"
                + "<text class=\"legend\" x=\"\(coordinate(x + 24))\" y=\"\(coordinate(y))\">\(escape(entry.name))</text>\n"
            x += width
        }
        return (svg, rows)
    }

    static func axes(xScale: ScaleMap, yScale: ScaleMap, x: Axis, y: Axis) -> String {
        let plotLeft = xScale.pixels.lowerBound, plotRight = xScale.pixels.upperBound
        let plotTop = yScale.pixels.lowerBound, plotBottom = yScale.pixels.upperBound
        var svg = ""
        for tick in yScale.ticks {
            let py = coordinate(yScale(tick))
            svg += "<line class=\"gridline\" x1=\"\(coordinate(plotLeft))\" y1=\"\(py)\" x2=\"\(coordinate(plotRight))\" y2=\"\(py)\"/>"
                + "<text class=\"tick\" x=\"\(coordinate(plotLeft - 6))\" y=\"\(py)\" dy=\"4\" text-anchor=\"end\">\(number(tick))</text>\n"
        }
        for tick in xScale.ticks {
            let px = coordinate(xScale(tick))
            svg += "<line class=\"tick-mark\" x1=\"\(px)\" y1=\"\(coordinate(plotBottom))\" x2=\"\(px)\" y2=\"\(coordinate(plotBottom + 4))\"/>"
                + "<text class=\"tick\" x=\"\(px)\" y=\"\(coordinate(plotBottom + 17))\" text-anchor=\"middle\">\(number(tick))</text>\n"
        }
        svg += "<path class=\"axis\" d=\"M\(coordinate(plotLeft)),\(coordinate(plotTop))V\(coordinate(plotBottom))H\(coordinate(plotRight))\" fill=\"none\"/>\n"
        svg += axisLabel(x.label, x: (plotLeft + plotRight) / 2, y: chartHeight - 8)
        svg += axisLabel(y.label + (yScale.logarithmic ? " (log scale)" : ""), x: 16, y: (plotTop + plotBottom) / 2, vertical: true)
        return svg
    }

    // MARK: text

    /// Short numbers for ticks and tooltips: "0.25", "0.0005", "2.5e-5", "1200", "40000".
    static func number(_ value: Double) -> String {
        if value == 0 { return "0" }
        if value == value.rounded(), abs(value) < 1e9 { return String(Int(value)) }
        var text = String(format: "%.4g", value)
        if let e = text.range(of: "e") {
            let mantissa = String(text[..<e.lowerBound])
            var exponent = String(text[e.upperBound...])
            let sign = exponent.hasPrefix("-") ? "-" : ""
            exponent = String(exponent.drop { $0 == "-" || $0 == "+" || $0 == "0" })
            text = mantissa + "e" + sign + (exponent.isEmpty ? "0" : exponent)
        }
        return text
    }

    static func percent(_ fraction: Double) -> String { String(format: "%.1f%%", fraction * 100) }

    /// One decimal: enough for a 560-unit canvas, and keeps long loss curves small.
    static func coordinate(_ value: Double) -> String { String(format: "%.1f", value) }

    /// For text and attribute values: the five characters HTML and SVG treat specially.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
