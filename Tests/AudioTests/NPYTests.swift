import XCTest
@testable import Audio

final class NPYTests: XCTestCase {
    func testRoundTripShapes() throws {
        let directory = try makeTemporaryDirectory(for: self)
        for shape in [[128, 31], [7], [], [0, 3], [2, 3, 4]] {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { Float($0) * 0.25 - 3 }
            let path = "\(directory)/a.npy"
            try NPY.write(path: path, shape: shape, values: values)
            let loaded = try NPY.read(path: path)
            XCTAssertEqual(loaded.shape, shape)
            XCTAssertEqual(loaded.values, values)
            // numpy requires the data to start on a 64-byte boundary.
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            XCTAssertEqual((size - count * 4) % 64, 0, "\(shape)")
        }
    }

    func testReadsNumpyWrittenFixture() throws {
        let loaded = try NPY.read(path: try fixturePath("3_theo_7.logmel.npy"))
        XCTAssertEqual(loaded.shape, [128, 11])
        XCTAssertEqual(loaded.values.count, 128 * 11)
    }

    func testRejectsMismatchedShapeOnWrite() throws {
        let directory = try makeTemporaryDirectory(for: self)
        XCTAssertThrowsError(try NPY.write(path: "\(directory)/b.npy", shape: [2, 2], values: [1, 2, 3]))
    }

    func testBadFilesThrowOneLineErrors() throws {
        let directory = try makeTemporaryDirectory(for: self)
        let good = "\(directory)/good.npy"
        try NPY.write(path: good, shape: [4, 4], values: [Float](repeating: 1, count: 16))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cases: [(String, Data?, String)] = [
            ("missing.npy", nil, "missing"),
            ("magic.npy", Data("not numpy at all".utf8), "bad magic"),
            ("cut.npy", bytes.prefix(bytes.count - 4), "data bytes"),
            ("f8.npy", npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", dataBytes: 16), "'<f4'"),
            ("fortran.npy", npy(header: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", dataBytes: 16), "Fortran"),
            ("huge.npy", npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", dataBytes: 16), "data bytes"),
            ("negative.npy", npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", dataBytes: 16), "shape"),
        ]
        for (name, contents, keyword) in cases {
            let path = "\(directory)/\(name)"
            if let contents { try contents.write(to: URL(fileURLWithPath: path)) }
            XCTAssertThrowsError(try NPY.read(path: path), name) { error in
                let text = "\(error)"
                XCTAssertTrue(error is AudioError && text.hasPrefix(path) && text.contains(keyword) && !text.contains("\n"), text)
            }
        }
    }

    /// A version-1.0 .npy file with an arbitrary header dictionary and `dataBytes` zero bytes of data.
    private func npy(header: String, dataBytes: Int) -> Data {
        let text = header + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)])
        data.append(contentsOf: Array(text.utf8))
        data.append(Data(count: dataBytes))
        return data
    }
}
