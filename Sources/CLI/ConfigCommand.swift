import ArgumentParser
import Foundation
import Train

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Every run-config key with its meaning, default and allowed values; --check validates a config.",
        discussion: """
            Without options, lists every key a run config may hold (the seed's H2O Hydrogen Torch keys and \
            digits-dist's own), section by section: its allowed values, its default and what it does, or, for \
            a key accepted but ignored, why. With --check, reads the config and its --set overrides as `train` \
            would (unknown keys, values out of range, keys that contradict each other) without touching data \
            or training: one line and exit 1 on the first problem, else a line saying what it sets.

            Examples:
              digits-dist config
              digits-dist config --check configs/amnist.yaml
              digits-dist config --check configs/fsdd.yaml --set training.epochs=0
            """)

    @Option(help: ArgumentHelp("Validate this run config (YAML) without training.", valueName: "file"))
    var check: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("With --check: an override to validate too (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        try failing {
            guard let check else {
                guard overrides.isEmpty else { throw ValidationError("--set needs --check FILE") }
                print(Self.keyList)
                return
            }
            let config = try RunConfig.load(path: check, overrides: overrides)
            _ = try TrainingRecipe(config: config, seed: 0)
            let set = config.explicitKeys.sorted()
            let ignored = set.filter { ConfigKey.byName[$0]?.ignoredBecause != nil }
            print("\(check): valid; sets \(set.count) keys" + (ignored.isEmpty ? "" : ", \(ignored.count) of them ignored: "
                + ignored.joined(separator: ", ") + " (`digits-dist config` says why)"))
        }
    }

    /// Every key, grouped by section: "key  allowed  default D" then its meaning, indented.
    static var keyList: String {
        var lines: [String] = [], section = ""
        for key in ConfigKey.all.sorted(by: { $0.name < $1.name }) {
            let top = key.name.contains(".") ? String(key.name.split(separator: ".")[0]) : ""
            if top != section {
                section = top
                lines.append(lines.isEmpty ? "\(top.isEmpty ? "(top level)" : top):" : "\n\(top):")
            }
            lines.append("  \(key.name)  \(key.kind.allowed)  default \(key.defaultValue)")
            lines.append("      " + (key.ignoredBecause.map { "ignored: \($0) (\(key.help))" } ?? key.help))
        }
        return lines.joined(separator: "\n")
    }
}

extension ConfigKey.Kind {
    /// The values a key takes, as a reader writes them.
    var allowed: String {
        switch self {
        case .int(let range) where range.upperBound == .max:
            return range.lowerBound == .min ? "integer" : "integer ≥ \(range.lowerBound)"
        case .int(let range): return "integer \(range.lowerBound)…\(range.upperBound)"
        case .double(let range): return "number \(range.lowerBound)…\(range.upperBound)"
        case .bool: return "true|false"
        case .string: return "text"
        case .choice(let choices): return choices.joined(separator: "|")
        case .list: return "list"
        }
    }
}
