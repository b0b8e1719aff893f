import Foundation

/// A minimal RFC 4180 reader: comma-separated, fields optionally double-quoted ("" escapes a quote).
struct CSVTable {
    var header: [String]
    var rows: [[String]]

    /// Parses `text`; the first non-empty line is the header.
    init(text: String) {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = text.makeIterator()
        var pending: Character? = nil
        func endRecord() {
            record.append(field)
            field = ""
            if !(record.count == 1 && record[0].isEmpty) { records.append(record) }
            record = []
        }
        while let c = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    let next = iterator.next()
                    if next == "\"" { field.append("\"") } else { inQuotes = false; pending = next }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                inQuotes = true
            } else if c == "," {
                record.append(field)
                field = ""
            } else if c == "\n" || c == "\r\n" || c == "\r" {
                endRecord()
            } else {
                field.append(c)
            }
        }
        if !field.isEmpty || !record.isEmpty { endRecord() }
        header = records.first?.map { $0.trimmingCharacters(in: .whitespaces) } ?? []
        rows = Array(records.dropFirst())
    }
}
