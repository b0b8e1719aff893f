import Foundation
import NN

/// torchvision ResNet weights from a safetensors file (`--pretrained FILE`): every tensor of the same
/// name and shape is copied in, the first convolution's RGB kernels are summed into our one input
/// channel, a SubSpectral BatchNorm's bands each start as their channel's BatchNorm, and the classifier
/// (`fc.*`) keeps its fresh initialisation, since it has other classes.
public enum PretrainedWeights {
    public struct Report: Sendable {
        public var loaded: Int
        public var summedToOneChannel: [String]
        public var replaced: [String]
    }

    struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }

    /// The JSON header: tensor name → entry, beside an optional "__metadata__" of another shape.
    struct Header: Decodable {
        var entries: [String: Entry] = [:]

        struct Name: CodingKey {
            var stringValue: String
            init(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let tensors = try decoder.container(keyedBy: Name.self)
            for name in tensors.allKeys where name.stringValue != "__metadata__" {
                entries[name.stringValue] = try tensors.decode(Entry.self, forKey: name)
            }
        }
    }

    @discardableResult
    public static func load(path: String, into model: ResNet) throws -> Report {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(path: path, problem: problem) }
        guard let file = FileManager.default.contents(atPath: path) else { throw fail("cannot be read") }
        guard file.count >= 8 else { throw fail("too short to be a safetensors file") }
        let headerLength = Int(file.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        guard headerLength > 0, 8 + headerLength <= file.count else { throw fail("not a safetensors file (header length \(headerLength))") }
        let entries: [String: Entry]
        do {
            entries = try JSONDecoder().decode(Header.self, from: file[8..<(8 + headerLength)]).entries
        } catch {
            // A failure inside one tensor's entry has that tensor's name first on its coding path.
            let context: DecodingError.Context? = switch error as? DecodingError {
            case .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context),
                 .dataCorrupted(let context): context
            default: nil
            }
            guard let name = context?.codingPath.first?.stringValue else {
                throw fail("not a safetensors file (its header is not JSON)")
            }
            throw fail("tensor \(name) has no dtype, shape and data_offsets")
        }
        if let (name, _) = entries.first(where: { $0.value.data_offsets.count != 2 }) {
            throw fail("tensor \(name) has no dtype, shape and data_offsets")
        }
        let dataStart = 8 + headerLength
        var report = Report(loaded: 0, summedToOneChannel: [], replaced: [])
        let targets = model.parameterSlots.map { ($0, model.parameters) } + model.bufferSlots.map { ($0, model.buffers) }
        for (slot, storage) in targets {
            if slot.name.hasPrefix("fc.") {
                report.replaced.append(slot.name)
                continue
            }
            guard let entry = entries[slot.name] else { throw fail("has no tensor \(slot.name) (is it a torchvision \(model.architecture.rawValue)?)") }
            let values = try decode(entry, name: slot.name, file: file, dataStart: dataStart, fail: fail)
            if entry.shape == slot.shape {
                (storage + slot.offset).update(from: values, count: slot.count)
            } else if slot.shape.count == 4, entry.shape.count == 4, slot.shape[1] == 1,
                      entry.shape[0] == slot.shape[0], Array(entry.shape[2...]) == Array(slot.shape[2...]) {
                // [out][in][kh][kw] with `in` colour channels → one channel: the response to grey input.
                let (outputs, inputs, plane) = (entry.shape[0], entry.shape[1], entry.shape[2] * entry.shape[3])
                for o in 0..<outputs {
                    for p in 0..<plane {
                        var sum: Float = 0
                        for i in 0..<inputs { sum += values[(o * inputs + i) * plane + p] }
                        storage[slot.offset + o * plane + p] = sum
                    }
                }
                report.summedToOneChannel.append(slot.name)
            } else if slot.shape.count == 1, entry.shape.count == 1, entry.shape[0] > 0,
                      slot.shape[0] > entry.shape[0], slot.shape[0] % entry.shape[0] == 0,
                      slot.shape[0] / entry.shape[0] <= model.subSpectralBands {
                // A SubSpectral BatchNorm's [C·S] from a plain one's [C]: every band starts as its channel.
                let bands = slot.shape[0] / entry.shape[0]
                for g in 0..<slot.count { storage[slot.offset + g] = values[g / bands] }
            } else {
                throw fail("tensor \(slot.name) has shape \(entry.shape), this model's is \(slot.shape) (architecture.width must be 64 for torchvision weights)")
            }
            report.loaded += 1
        }
        return report
    }

    static func decode(_ entry: Entry, name: String, file: Data, dataStart: Int,
                       fail: (String) -> CheckpointError) throws -> [Float] {
        let count = entry.shape.reduce(1, *)
        let (begin, end) = (dataStart + entry.data_offsets[0], dataStart + entry.data_offsets[1])
        let width: Int
        switch entry.dtype {
        case "F32": width = 4
        case "F64": width = 8
        case "F16", "BF16": width = 2
        default: throw fail("tensor \(name) is \(entry.dtype); F32, F64, F16 or BF16 expected")
        }
        guard begin >= dataStart, end <= file.count, end - begin == count * width else {
            throw fail("tensor \(name)'s data_offsets do not fit its shape or the file")
        }
        return file.withUnsafeBytes { raw in
            (0..<count).map { i in
                let at = begin + i * width
                switch entry.dtype {
                case "F32": return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                case "F64": return Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
                case "F16": return Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))))
                default: return Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) << 16)
                }
            }
        }
    }
}
