@testable import Datasets
import XCTest

final class ChecksumAndRandomTests: XCTestCase {
    func testCRC32CKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([]), 0)
    }

    func testCRC32CIncrementalEqualsWholeAtEveryAlignment() {
        var rng = SplitMix64(seed: 9)
        let bytes = (0..<1000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = CRC32C.checksum(bytes)
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            bytes.withUnsafeBytes { raw in
                let first = CRC32C.update(0, raw.baseAddress!, count: cut)
                XCTAssertEqual(CRC32C.update(first, raw.baseAddress! + cut, count: 1000 - cut), whole, "cut at \(cut)")
            }
        }
    }

    func testSplitMix64ReferenceSequence() {
        // First outputs for seed 1234567 from the reference C implementation (Vigna, splitmix64.c).
        var rng = SplitMix64(seed: 1_234_567)
        XCTAssertEqual((0..<3).map { _ in rng.next() },
                       [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    func testBoundedIntegersAreInRangeAndCoverIt() {
        var rng = SplitMix64(seed: 5)
        var seen = Set<Int>()
        for _ in 0..<2000 {
            let v = rng.nextInt(below: 7)
            XCTAssertTrue((0..<7).contains(v))
            seen.insert(v)
        }
        XCTAssertEqual(seen.count, 7)
        var shuffled = Array(0..<50)
        rng.shuffle(&shuffled)
        XCTAssertEqual(shuffled.sorted(), Array(0..<50))
        XCTAssertNotEqual(shuffled, Array(0..<50))
    }
}

final class SHA256Tests: XCTestCase {
    func testFIPSVectors() {
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
