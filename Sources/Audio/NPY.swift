import Foundation

#if _endian(big)
#error("NPY writes the host's float bytes as '<f4' and assumes a little-endian host")
#endif

/// Writes a Float32 array as a NumPy .npy file (C order, '<f4', given shape) / reads one back.
/// Format 1.0 (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html); reading
/// also accepts 2.0/3.0 headers, which differ only in a 4-byte header length.
public enum NPY {
    private static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    public static func write(path: String, shape: [Int], values: [Float]) throws {
        guard elementCount(shape) == values.count else {
            throw AudioError(path: path, problem: "shape \(shape) does not hold \(values.count) values")
        }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // numpy pads the header with spaces and a newline so the data starts on a 64-byte boundary.
        let prefixLength = magic.count + 2 + 2
        header += String(repeating: " ", count: 63 - (prefixLength + header.utf8.count) % 64) + "\n"
        var bytes = Data(magic + [1, 0])
        let headerLength = UInt16(header.utf8.count)
        bytes.append(contentsOf: [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)])
        bytes.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        do {
            try bytes.write(to: URL(fileURLWithPath: path))
        } catch {
            throw AudioError(path: path, problem: "cannot write (\(error.localizedDescription))")
        }
    }

    public static func read(path: String) throws -> (shape: [Int], values: [Float]) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw AudioError(path: path, problem: missing ? "missing (no such file)" : "cannot read (\(error.localizedDescription))")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw AudioError(path: path, problem: "not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let lengthBytes = major == 1 ? 2 : 4
        guard [1, 2, 3].contains(major), bytes.count >= 8 + lengthBytes else {
            throw AudioError(path: path, problem: "unsupported .npy version \(major)")
        }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let dataStart = 8 + lengthBytes + headerLength
        guard dataStart <= bytes.count, let header = String(bytes: bytes[(8 + lengthBytes)..<dataStart], encoding: .utf8) else {
            throw AudioError(path: path, problem: "truncated .npy header")
        }
        guard header.contains("'descr': '<f4'") else {
            throw AudioError(path: path, problem: "dtype is not little-endian float32 ('<f4') in header \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard header.contains("'fortran_order': False") else {
            throw AudioError(path: path, problem: "Fortran-order arrays are not supported")
        }
        guard let shape = parseShape(header) else {
            throw AudioError(path: path, problem: "cannot parse shape in header \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let dataBytes = bytes.count - dataStart
        guard let count = elementCount(shape), dataBytes == count * MemoryLayout<Float>.size else {
            throw AudioError(path: path, problem: "holds \(dataBytes) data bytes, too few or many for shape \(shape) of float32")
        }
        // Copied bytewise: other writers need not align the data to 4 bytes.
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes[dataStart...].withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            initialized = count
        }
        return (shape, values)
    }

    /// The product of the dimensions, or nil if one is negative or the product overflows (a corrupt header).
    private static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= Int.max / 8 else { return nil }
            count = product
        }
        return count
    }

    /// "'shape': (128, 31), " → [128, 31]; "()" is a scalar (shape []).
    private static func parseShape(_ header: String) -> [Int]? {
        guard let key = header.range(of: "'shape':"),
              let open = header[key.upperBound...].firstIndex(of: "("),
              let close = header[open...].firstIndex(of: ")") else { return nil }
        let parts = header[header.index(after: open)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = parts.compactMap { Int($0) }
        guard shape.count == parts.count, shape.allSatisfy({ $0 >= 0 }) else { return nil }
        return shape
    }
}
