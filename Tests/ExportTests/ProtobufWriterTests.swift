@testable import Export
import XCTest

/// Wire-format bytes against the worked examples of https://protobuf.dev/programming-guides/encoding/
/// and hand-encoded ONNX fragments.
final class ProtobufWriterTests: XCTestCase {
    struct Test1: ProtobufMessage {
        var a: Int
        func encode(to writer: inout ProtobufWriter) { writer.int(1, a) }
    }

    struct Test3: ProtobufMessage {
        var c: Test1
        func encode(to writer: inout ProtobufWriter) { writer.message(3, c) }
    }

    func varint(_ value: UInt64) -> [UInt8] {
        var writer = ProtobufWriter()
        writer.appendVarint(value)
        return writer.bytes
    }

    func testVarintsAreLittleEndianSevenBitGroups() {
        XCTAssertEqual(varint(0), [0x00])
        XCTAssertEqual(varint(1), [0x01])
        XCTAssertEqual(varint(127), [0x7F])
        XCTAssertEqual(varint(128), [0x80, 0x01])
        XCTAssertEqual(varint(150), [0x96, 0x01])
        XCTAssertEqual(varint(300), [0xAC, 0x02])
        XCTAssertEqual(varint(UInt64.max), Array(repeating: 0xFF, count: 9) + [0x01])
    }

    func testIntFieldsTagsNegativesAndDefaults() {
        XCTAssertEqual(Test1(a: 150).encoded(), [0x08, 0x96, 0x01])
        XCTAssertEqual(Test1(a: -1).encoded(), [0x08] + Array(repeating: 0xFF, count: 9) + [0x01])
        XCTAssertEqual(Test1(a: 0).encoded(), [], "proto3 leaves a default value out")
        var writer = ProtobufWriter()
        writer.int(20, 7)  // a field number above 15 takes a two-byte tag
        XCTAssertEqual(writer.bytes, [0xA0, 0x01, 0x07])
    }

    func testStringsRepeatedValuesAndEmbeddedMessagesAreLengthDelimited() {
        var writer = ProtobufWriter()
        writer.string(2, "testing")
        XCTAssertEqual(writer.bytes, [0x12, 0x07] + Array("testing".utf8))
        XCTAssertEqual(Test3(c: Test1(a: 150)).encoded(), [0x1A, 0x03, 0x08, 0x96, 0x01])

        writer = ProtobufWriter()
        writer.repeatedString(1, ["x", ""])
        writer.repeatedInt(8, [3, 0])
        XCTAssertEqual(writer.bytes, [0x0A, 0x01, 0x78, 0x0A, 0x00, 0x40, 0x03, 0x40, 0x00])
    }

    func testPackedFloatsAreOneFieldOfLittleEndianIEEEBytes() {
        var writer = ProtobufWriter()
        writer.packedFloats(4, [1, -2.5])
        XCTAssertEqual(writer.bytes, [0x22, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0])
        writer = ProtobufWriter()
        writer.packedFloats(4, [])
        XCTAssertEqual(writer.bytes, [])
    }

    func testONNXMessagesUseTheirFieldNumbers() {
        XCTAssertEqual(ONNX.AttributeProto("axis", .int(1)).encoded(),
                       [0x0A, 0x04] + Array("axis".utf8) + [0x18, 0x01, 0xA0, 0x01, 0x02])
        XCTAssertEqual(ONNX.AttributeProto("pads", .ints([1, 1])).encoded(),
                       [0x0A, 0x04] + Array("pads".utf8) + [0x40, 0x01, 0x40, 0x01, 0xA0, 0x01, 0x07])
        // ValueInfoProto{name "x", type: TypeProto{tensor_type: {elem_type FLOAT, shape: {dim [N, 0]}}}}
        let shape: [UInt8] = [0x0A, 0x03, 0x12, 0x01, 0x4E, 0x0A, 0x02, 0x08, 0x00]
        let tensorType: [UInt8] = [0x08, 0x01, 0x12, UInt8(shape.count)] + shape
        let type: [UInt8] = [0x0A, UInt8(tensorType.count)] + tensorType
        XCTAssertEqual(ONNX.ValueInfoProto(name: "x", shape: [.parameter("N"), .value(0)]).encoded(),
                       [0x0A, 0x01, 0x78, 0x12, UInt8(type.count)] + type)
        XCTAssertEqual(ONNX.TensorProto(dims: [2], floatData: [1, -2.5], name: "w").encoded(),
                       [0x08, 0x02, 0x10, 0x01, 0x22, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0, 0x42, 0x01, 0x77])
    }
}
