/// The ONNX messages an exported ResNet needs, each encoding itself with the field numbers of
/// onnx/onnx.proto3 (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto3). This is our committed
/// "generated code": only the fields we write are declared, and nothing is generated at build time.
public enum ONNX {
    /// TensorProto.DataType.FLOAT = 1.
    public static let float32: Int = 1

    /// `message OperatorSetIdProto`
    public struct OperatorSetIdProto: ProtobufMessage {
        public var domain = ""  // string domain = 1 ("" is the default ai.onnx operator set)
        public var version: Int  // int64 version = 2

        func encode(to writer: inout ProtobufWriter) {
            writer.string(1, domain)
            writer.int(2, version)
        }
    }

    /// `message ModelProto`
    public struct ModelProto: ProtobufMessage {
        public var irVersion: Int  // int64 ir_version = 1
        public var producerName: String  // string producer_name = 2
        public var producerVersion: String  // string producer_version = 3
        public var docString: String  // string doc_string = 6
        public var graph: GraphProto  // GraphProto graph = 7
        public var opsetImport: [OperatorSetIdProto]  // repeated OperatorSetIdProto opset_import = 8

        func encode(to writer: inout ProtobufWriter) {
            writer.int(1, irVersion)
            writer.string(2, producerName)
            writer.string(3, producerVersion)
            writer.string(6, docString)
            writer.message(7, graph)
            writer.messages(8, opsetImport)
        }

        /// The bytes of a `.onnx` file.
        public func serialized() -> [UInt8] { encoded() }
    }

    /// `message GraphProto`
    public struct GraphProto: ProtobufMessage {
        public var node: [NodeProto] = []  // repeated NodeProto node = 1 (topologically sorted)
        public var name: String  // string name = 2
        public var initializer: [TensorProto] = []  // repeated TensorProto initializer = 5
        public var input: [ValueInfoProto] = []  // repeated ValueInfoProto input = 11
        public var output: [ValueInfoProto] = []  // repeated ValueInfoProto output = 12

        func encode(to writer: inout ProtobufWriter) {
            writer.messages(1, node)
            writer.string(2, name)
            writer.messages(5, initializer)
            writer.messages(11, input)
            writer.messages(12, output)
        }
    }

    /// `message NodeProto`
    public struct NodeProto: ProtobufMessage {
        public var input: [String]  // repeated string input = 1
        public var output: [String]  // repeated string output = 2
        public var name: String  // string name = 3
        public var opType: String  // string op_type = 4
        public var attribute: [AttributeProto] = []  // repeated AttributeProto attribute = 5

        func encode(to writer: inout ProtobufWriter) {
            writer.repeatedString(1, input)
            writer.repeatedString(2, output)
            writer.string(3, name)
            writer.string(4, opType)
            writer.messages(5, attribute)
        }
    }

    /// `message AttributeProto`, for the int and int-list attributes our operators take.
    public struct AttributeProto: ProtobufMessage {
        public enum Value: Equatable {
            case int(Int)  // int64 i = 3, AttributeType INT = 2
            case ints([Int])  // repeated int64 ints = 8, AttributeType INTS = 7
        }
        public var name: String  // string name = 1
        public var value: Value

        public init(_ name: String, _ value: Value) {
            self.name = name
            self.value = value
        }

        func encode(to writer: inout ProtobufWriter) {
            writer.string(1, name)
            switch value {
            case .int(let i):
                writer.int(3, i)
                writer.int(20, 2)  // AttributeType type = 20
            case .ints(let list):
                writer.repeatedInt(8, list)
                writer.int(20, 7)
            }
        }
    }

    /// `message TensorProto`, float32 only, data in `float_data`.
    public struct TensorProto: ProtobufMessage {
        public var dims: [Int]  // repeated int64 dims = 1
        public var dataType = ONNX.float32  // int32 data_type = 2
        public var floatData: [Float]  // repeated float float_data = 4 [packed = true], row-major
        public var name: String  // string name = 8

        func encode(to writer: inout ProtobufWriter) {
            writer.repeatedInt(1, dims)
            writer.int(2, dataType)
            writer.packedFloats(4, floatData)
            writer.string(8, name)
        }
    }

    /// `message TensorShapeProto.Dimension`: a size, or a name for a size chosen at run time (the batch).
    public enum Dimension: ProtobufMessage, Equatable, CustomStringConvertible {
        case value(Int)  // int64 dim_value = 1
        case parameter(String)  // string dim_param = 2

        func encode(to writer: inout ProtobufWriter) {
            switch self {
            case .value(let size):
                writer.appendTag(1, .varint)  // written even when 0: the oneof's presence is the information
                writer.appendVarint(UInt64(bitPattern: Int64(size)))
            case .parameter(let name): writer.string(2, name)
            }
        }

        public var description: String {
            switch self {
            case .value(let size): return "\(size)"
            case .parameter(let name): return name
            }
        }
    }

    /// `message TensorShapeProto` (repeated Dimension dim = 1).
    struct TensorShapeProto: ProtobufMessage {
        var dim: [Dimension]

        func encode(to writer: inout ProtobufWriter) { writer.messages(1, dim) }
    }

    /// `message TypeProto.Tensor`
    struct TensorTypeProto: ProtobufMessage {
        var elemType: Int  // int32 elem_type = 1
        var shape: TensorShapeProto  // TensorShapeProto shape = 2

        func encode(to writer: inout ProtobufWriter) {
            writer.int(1, elemType)
            writer.message(2, shape)
        }
    }

    /// `message TypeProto`, the tensor case of its oneof (Tensor tensor_type = 1).
    struct TypeProto: ProtobufMessage {
        var tensorType: TensorTypeProto

        func encode(to writer: inout ProtobufWriter) { writer.message(1, tensorType) }
    }

    /// `message ValueInfoProto` of a float32 tensor: a graph input or output.
    public struct ValueInfoProto: ProtobufMessage, CustomStringConvertible {
        public var name: String  // string name = 1
        public var shape: [Dimension]  // TypeProto type = 2, as TypeProto.Tensor{FLOAT, shape}

        func encode(to writer: inout ProtobufWriter) {
            writer.string(1, name)
            writer.message(2, TypeProto(tensorType: TensorTypeProto(elemType: ONNX.float32,
                                                                    shape: TensorShapeProto(dim: shape))))
        }

        /// "features float32 [N, 1, 128, 44]"
        public var description: String { "\(name) float32 [\(shape.map(\.description).joined(separator: ", "))]" }
    }
}
