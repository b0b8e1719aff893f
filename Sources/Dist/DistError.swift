import CMPI

/// Everything that can go wrong in Dist, each with a one-line description.
public enum DistError: Error, CustomStringConvertible, Equatable {
    /// An MPI call returned a code other than MPI_SUCCESS (the communicators use MPI_ERRORS_RETURN).
    case mpi(function: String, code: Int32, message: String)
    /// A caller-supplied value is out of range; the message names the value.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .mpi(function, code, message): return "\(function) failed with MPI error \(code): \(message)"
        case let .invalidArgument(message): return "invalid argument: \(message)"
        }
    }
}

/// Turns an MPI return code into a thrown `DistError.mpi` carrying MPI's own error text.
@inline(__always)
func check(_ code: Int32, _ function: StaticString) throws {
    if code != cmpi_success() { throw DistError.mpi(function: "\(function)", code: code, message: mpiErrorString(code)) }
}

/// MPI's text for `code`; Open MPI aborts the process if MPI_Error_string is called outside
/// MPI_Init...MPI_Finalize, so there only the number is given.
private func mpiErrorString(_ code: Int32) -> String {
    var initialized: Int32 = 0, finalized: Int32 = 0
    MPI_Initialized(&initialized)
    MPI_Finalized(&finalized)
    guard initialized != 0, finalized == 0 else { return "MPI not running, no error text for code \(code)" }
    var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
    var length: Int32 = 0
    guard MPI_Error_string(code, &text, &length) == cmpi_success() else { return "unknown error" }
    return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// MPI counts are C ints; larger buffers must be split by the caller (or by GradientBucketer's buckets).
@inline(__always)
func mpiCount(_ count: Int, _ what: String) throws -> Int32 {
    guard count >= 0, count <= Int(Int32.max) else {
        throw DistError.invalidArgument("\(what) = \(count) is outside 0...\(Int32.max) (MPI counts are 32-bit)")
    }
    return Int32(count)
}
