/// Bad configuration or input reaching the engine. Thrown before any work is done, so a caller can
/// report it and stop cleanly instead of trapping inside a kernel built with -Ounchecked.
public enum NNError: Error, CustomStringConvertible, Equatable {
    /// A configuration string that names no architecture we build.
    case unknownArchitecture(String)
    /// A numeric argument outside its domain: `name` is the argument, `value` what was given.
    case invalidArgument(name: String, value: String, problem: String)
    /// A class label that does not index the logits.
    case labelOutOfRange(sample: Int, label: Int, classes: Int)

    public var description: String {
        switch self {
        case .unknownArchitecture(let name):
            let known = Architecture.allCases.map(\.rawValue).joined(separator: ", ")
            return "unknown architecture '\(name)': expected one of \(known)"
        case .invalidArgument(let name, let value, let problem):
            return "invalid \(name) \(value): \(problem)"
        case .labelOutOfRange(let sample, let label, let classes):
            return "label \(label) of sample \(sample) is out of range 0..<\(classes)"
        }
    }
}

/// Throws unless `condition` holds; keeps argument checks one line each at the top of a function. The
/// message parts are autoclosures so a passing check (every training step) builds no strings.
@inline(__always)
func require(_ condition: Bool, _ name: @autoclosure () -> String, _ value: @autoclosure () -> Any,
             _ problem: @autoclosure () -> String) throws {
    if !condition { throw NNError.invalidArgument(name: name(), value: "\(value())", problem: problem()) }
}
