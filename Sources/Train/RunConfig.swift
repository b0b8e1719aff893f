import Audio
import Datasets
import Foundation
import Yams

/// A config value, typed by its key's schema.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)
    case list([String])

    public var description: String {
        switch self {
        case .int(let v): return "\(v)"
        case .double(let v): return "\(v)"
        case .bool(let v): return "\(v)"
        case .string(let v): return v
        case .list(let v): return "[" + v.joined(separator: ", ") + "]"
        }
    }
}

/// A one-line config error that names the key, the value and what is allowed.
public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description.escapingControlCharacters }
}

/// A run's configuration: the schema's defaults, then a YAML file, then `--set key=value` overrides.
/// Keys are dotted (`training.batch_size`), as in the YAML's nesting.
public struct RunConfig: Sendable {
    public private(set) var values: [String: ConfigValue]
    /// The YAML file's folder, which relative data paths in it are resolved against.
    public let baseDirectory: String
    /// Keys set in the file or on the command line (the rest are defaults).
    public private(set) var explicitKeys: Set<String> = []

    public init(baseDirectory: String = FileManager.default.currentDirectoryPath) {
        values = Dictionary(uniqueKeysWithValues: ConfigKey.all.map { ($0.name, $0.defaultValue) })
        self.baseDirectory = baseDirectory
    }

    /// Reads a YAML file; unknown keys and bad values are errors naming the file and key.
    public static func load(path: String, overrides: [String] = []) throws -> RunConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("\(path): cannot be read")
        }
        var config = try parse(yaml: text, source: path, baseDirectory: (path as NSString).deletingLastPathComponent)
        try config.apply(overrides: overrides)
        return config
    }

    /// Parses YAML text; `source` names it in errors.
    public static func parse(yaml text: String, source path: String,
                             baseDirectory: String = FileManager.default.currentDirectoryPath) throws -> RunConfig {
        var config = RunConfig(baseDirectory: baseDirectory)
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError("\(path): not valid YAML (\(String(describing: error).split(separator: "\n").first ?? ""))")
        }
        if let root {
            guard case .mapping = root else { throw ConfigError("\(path): the top level must be a mapping of keys") }
            try config.merge(root, prefix: "", file: path)
        }
        return config
    }

    /// The resolved config a checkpoint or a run folder saved. Every key is written there, so a key missing
    /// predates it and stands for the behaviour of that time: short clips at the start of the crop, features
    /// not normalised, folds drawn by the training seed, plain BatchNorm, no reverberation. A resume then
    /// compares like with like (and is refused, naming the key, where today's default would train differently).
    public static func parseSaved(yaml text: String, source path: String) throws -> RunConfig {
        var config = try parse(yaml: text, source: path)
        let before: [String: ConfigValue] = [
            "audio.short_clip_position": .string("Start"),
            "audio.spectrogram_normalization": .string("No"),
            "dataset.fold_seed": config.values["environment.seed", default: .int(0)],
            "architecture.subspectral_bands": .int(1),
            "augmentation.reverb_probability": .double(0),
        ]
        for (key, value) in before where !config.explicitKeys.contains(key) { config.values[key] = value }
        return config
    }

    /// Sets one key programmatically (e.g. the seed picked for `environment.seed: -1`).
    public mutating func set(_ key: String, to value: ConfigValue) {
        precondition(ConfigKey.byName[key] != nil, "unknown key \(key)")
        values[key] = value
    }

    /// Applies `key=value` overrides (the value is read as YAML: `3`, `true`, `[a, b]`).
    public mutating func apply(overrides: [String]) throws {
        for override in overrides {
            guard let equals = override.firstIndex(of: "=") else {
                throw ConfigError("--set \(override): expected key=value, e.g. training.epochs=3")
            }
            let key = String(override[..<equals]).trimmingCharacters(in: .whitespaces)
            let text = String(override[override.index(after: equals)...])
            let node = (try? Yams.compose(yaml: text)) ?? nil
            try set(key, node ?? Node(text), source: "--set")
        }
    }

    /// Applies `key=value` overrides of the inference keys (`prediction.*`) to a trained run's config: the
    /// only keys that can change after training without changing what the weights were trained for.
    public mutating func apply(inferenceOverrides overrides: [String]) throws {
        for override in overrides where !override.trimmingCharacters(in: .whitespaces).hasPrefix("prediction.") {
            throw ConfigError("--set \(override): only prediction.* keys apply to a trained model (the others are fixed by its training)")
        }
        try apply(overrides: overrides)
    }

    mutating func merge(_ node: Node, prefix: String, file: String) throws {
        guard let mapping = node.mapping else { return }
        for (keyNode, value) in mapping {
            let key = prefix + (keyNode.string ?? "")
            if value.mapping != nil && ConfigKey.byName[key] == nil {
                guard ConfigKey.all.contains(where: { $0.name.hasPrefix(key + ".") }) else {
                    let sections = Set(ConfigKey.all.compactMap { $0.name.split(separator: ".").count > 1 ? String($0.name.split(separator: ".")[0]) : nil })
                    throw ConfigError("\(file): unknown section '\(key)'\(Self.suggestion(for: key, among: sections.sorted()))")
                }
                try merge(value, prefix: key + ".", file: file)
            } else {
                try set(key, value, source: file)
            }
        }
    }

    mutating func set(_ key: String, _ node: Node, source: String) throws {
        guard let spec = ConfigKey.byName[key] else {
            throw ConfigError("\(source): unknown key '\(key)'\(Self.suggestion(for: key))")
        }
        values[key] = try Self.parse(node, as: spec, source: source)
        explicitKeys.insert(key)
    }

    static func parse(_ node: Node, as spec: ConfigKey, source: String) throws -> ConfigValue {
        func bad(_ allowed: String) -> ConfigError {
            let shown = node.scalar?.string ?? (node.sequence.map { "[" + $0.compactMap(\.string).joined(separator: ", ") + "]" } ?? "a mapping")
            return ConfigError("\(source): \(spec.name) = \(shown): \(allowed)")
        }
        if case .list = spec.kind {
            if let sequence = node.sequence {
                return .list(try sequence.map { item in
                    guard let text = item.scalar?.string else { throw bad("expected a list of plain values") }
                    return text
                })
            }
            guard let text = node.scalar?.string else { throw bad("expected a list") }
            return .list(text.isEmpty || text == "[]" ? [] : [text])
        }
        guard let text = node.scalar?.string else { throw bad("expected a single value") }
        switch spec.kind {
        case .int(let range):
            guard let v = Int(text), range.contains(v) else { throw bad("expected a whole number in \(describe(range))") }
            return .int(v)
        case .double(let range):
            guard let v = Double(text), v.isFinite, range.contains(v) else {
                throw bad("expected a number in \(range.lowerBound)...\(range.upperBound)")
            }
            return .double(v)
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default: throw bad("expected true or false")
            }
        case .string:
            return .string(text)
        case .choice(let choices):
            guard let match = choices.first(where: { $0.lowercased() == text.lowercased() }) else {
                throw bad("expected one of \(choices.joined(separator: ", "))")
            }
            return .string(match)
        case .list:
            fatalError("lists are handled above")
        }
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == Int.max ? "\(range.lowerBound) or more" : "\(range.lowerBound)...\(range.upperBound)"
    }

    /// ", did you mean 'x'?" for the closest valid key, when one is close.
    static func suggestion(for key: String, among names: [String] = ConfigKey.all.map(\.name)) -> String {
        let last = key.split(separator: ".").last.map(String.init) ?? key
        let scored = names.map { name -> (String, Int) in
            let nameLast = String(name.split(separator: ".").last!)
            return (name, min(editDistance(key, name), editDistance(last, nameLast) + 1))
        }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(3, key.count / 3) else { return "" }
        return "; did you mean '\(best.0)'?"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    // MARK: Typed access

    public func int(_ key: String) -> Int {
        guard case .int(let v) = values[key] else { fatalError("\(key) is not an int key") }
        return v
    }

    public func double(_ key: String) -> Double {
        guard case .double(let v) = values[key] else { fatalError("\(key) is not a number key") }
        return v
    }

    public func bool(_ key: String) -> Bool {
        guard case .bool(let v) = values[key] else { fatalError("\(key) is not a boolean key") }
        return v
    }

    public func string(_ key: String) -> String {
        guard case .string(let v) = values[key] else { fatalError("\(key) is not a text key") }
        return v
    }

    public func list(_ key: String) -> [String] {
        guard case .list(let v) = values[key] else { fatalError("\(key) is not a list key") }
        return v
    }

    /// A path from the config, resolved against the config file's folder; nil for "None" or empty.
    public func path(_ key: String) -> String? {
        let value = string(key)
        guard !value.isEmpty, value != "None" else { return nil }
        return value.hasPrefix("/") ? value : baseDirectory + "/" + value
    }

    /// The audio front end's settings.
    public var audioSettings: AudioSettings {
        var settings = AudioSettings()
        settings.sampleRate = int("audio.sample_rate")
        settings.fftSize = int("audio.stft_window_size")
        settings.hopSize = int("audio.hop_size")
        settings.melBins = int("audio.mel_frequency_bins")
        settings.minFrequency = double("audio.minimum_frequency")
        settings.maxFrequency = double("audio.maximum_frequency")
        return settings
    }

    /// The resolved config as YAML, grouped by section, for the run folder.
    public var yaml: String {
        var out = ""
        var section = ""
        for spec in ConfigKey.all.sorted(by: { $0.name < $1.name }) {
            let parts = spec.name.split(separator: ".", maxSplits: 1).map(String.init)
            let value = values[spec.name]!
            let rendered: String
            switch value {
            case .string(let s): rendered = "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
            case .list(let l): rendered = "[" + l.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ") + "]"
            default: rendered = value.description
            }
            if parts.count == 1 {
                out += "\(parts[0]): \(rendered)\n"
                section = ""
            } else {
                if parts[0] != section { out += "\(parts[0]):\n"; section = parts[0] }
                out += "    \(parts[1]): \(rendered)\n"
            }
        }
        return out
    }
}

extension RunConfig {
    /// The dataset at `path` (a folder or CSV) when given, else the config's `dataset.train_dataframe`
    /// or `dataset.data_folder`. A CSV's audio paths are relative to `dataset.data_folder` when the
    /// config sets it, else to the CSV's own folder. `dataset.extra_training_data` adds its clips as
    /// training-only speakers.
    public func loadDataset(path: String?) throws -> Dataset {
        let dataset = try loadMainDataset(path: path)
        guard let extra = self.path("dataset.extra_training_data") else { return dataset }
        return dataset.addingTrainingOnly(try Dataset.load(path: extra))
    }

    /// The test set of `dataset.test_dataframe` (audio paths relative to `dataset.data_folder_test`, else the
    /// CSV's folder) or of `dataset.data_folder_test` alone; nil when neither is set.
    var namesTestSet: Bool { path("dataset.test_dataframe") != nil || path("dataset.data_folder_test") != nil }

    public func loadTestDataset() throws -> Dataset? {
        let folder = path("dataset.data_folder_test")
        if let csv = path("dataset.test_dataframe") {
            return try Dataset.load(path: csv, dataFolder: folder, audioColumn: string("dataset.audio_column"),
                                    labelColumn: list("dataset.label_columns").first ?? "label")
        }
        return try folder.map { try Dataset.load(path: $0) }
    }

    private func loadMainDataset(path: String?) throws -> Dataset {
        let folder = self.path("dataset.data_folder")
        let audio = string("dataset.audio_column"), label = list("dataset.label_columns").first ?? "label"
        if let path {
            return try Dataset.load(path: path, dataFolder: path.lowercased().hasSuffix(".csv") ? folder : nil,
                                    audioColumn: audio, labelColumn: label)
        }
        if let csv = self.path("dataset.train_dataframe") {
            return try Dataset.load(path: csv, dataFolder: folder, audioColumn: audio, labelColumn: label)
        }
        if let folder { return try Dataset.load(path: folder) }
        throw ConfigError("no data: pass --data PATH or set dataset.train_dataframe / dataset.data_folder in the config")
    }
}
