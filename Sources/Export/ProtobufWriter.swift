#if _endian(big)
#error("ProtobufWriter copies the host's float bytes as protobuf's little-endian fixed32 and assumes a little-endian host")
#endif

/// The protocol-buffer wire format (https://protobuf.dev/programming-guides/encoding/), encode side only
/// and only what ONNX files need: varints, length-delimited fields and packed floats. Hand-written so the
/// package needs neither protoc at build time nor a protobuf runtime dependency.
///
/// A message is its fields back to back, each `tag = field << 3 | wireType` then the payload. Fields left
/// at their default (0, empty) are simply not written, as proto3 serialisers do.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    enum WireType: UInt64 {
        case varint = 0, lengthDelimited = 2
    }

    /// Base-128 little-endian groups of 7 bits, the high bit set on every byte but the last.
    mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func appendTag(_ field: Int, _ wireType: WireType) {
        appendVarint(UInt64(field) << 3 | wireType.rawValue)
    }

    /// int32/int64/enum fields: two's complement as a varint, so a negative value takes 10 bytes.
    mutating func int(_ field: Int, _ value: Int) {
        guard value != 0 else { return }
        appendTag(field, .varint)
        appendVarint(UInt64(bitPattern: Int64(value)))
    }

    /// One element of a repeated int64 field, written even when 0 (unpacked: valid in proto2 and proto3).
    mutating func repeatedInt(_ field: Int, _ values: [Int]) {
        for value in values {
            appendTag(field, .varint)
            appendVarint(UInt64(bitPattern: Int64(value)))
        }
    }

    /// A length-delimited field: tag, byte count, the bytes.
    mutating func appendLengthDelimited(_ field: Int, _ payload: some Collection<UInt8>) {
        appendTag(field, .lengthDelimited)
        appendVarint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    mutating func string(_ field: Int, _ value: String) {
        guard !value.isEmpty else { return }
        appendLengthDelimited(field, value.utf8)
    }

    /// Each element of a repeated string field, empty ones included (their position is meaningful).
    mutating func repeatedString(_ field: Int, _ values: [String]) {
        for value in values { appendLengthDelimited(field, value.utf8) }
    }

    /// A packed repeated float: one length-delimited field holding the IEEE-754 little-endian bytes.
    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        guard !values.isEmpty else { return }
        values.withUnsafeBytes { appendLengthDelimited(field, $0) }
    }

    /// An embedded message: its own encoding, length-delimited. Always written (presence is meaningful).
    mutating func message(_ field: Int, _ value: some ProtobufMessage) {
        appendLengthDelimited(field, value.encoded())
    }

    mutating func messages(_ field: Int, _ values: [some ProtobufMessage]) {
        for value in values { message(field, value) }
    }
}

/// A message that writes its fields with their field numbers.
protocol ProtobufMessage {
    func encode(to writer: inout ProtobufWriter)
}

extension ProtobufMessage {
    /// The message's wire-format bytes.
    func encoded() -> [UInt8] {
        var writer = ProtobufWriter()
        encode(to: &writer)
        return writer.bytes
    }
}
