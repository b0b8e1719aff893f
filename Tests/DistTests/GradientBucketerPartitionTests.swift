import CMPI
@testable import Dist
import XCTest

/// The bucket layout decides which all-reduces run when; checked against its definition without MPI.
final class GradientBucketerPartitionTests: XCTestCase {
    func testSmallLayoutCutsFromTheEnd() throws {
        // Tensors of 10 floats at 0, 10, 20, 30; 80 bytes = 20 floats per bucket.
        XCTAssertEqual(try GradientBucketer.partition(count: 40, tensorOffsets: [0, 10, 20, 30], bucketBytes: 80),
                       [20..<40, 0..<20])
        // 44 bytes round up to 11 floats: a bucket closes only once it reaches that, so two tensors each.
        XCTAssertEqual(try GradientBucketer.partition(count: 40, tensorOffsets: [0, 10, 20, 30], bucketBytes: 44),
                       [20..<40, 0..<20])
        // A last tensor of 20 floats fills a bucket alone; the leftover first tensor forms a smaller final bucket.
        XCTAssertEqual(try GradientBucketer.partition(count: 50, tensorOffsets: [0, 10, 20, 30], bucketBytes: 80),
                       [30..<50, 10..<30, 0..<10])
        XCTAssertEqual(try GradientBucketer.partition(count: 40, tensorOffsets: [0, 10, 20, 30], bucketBytes: 120),
                       [10..<40, 0..<10])
    }

    /// Training's default: an eighth of the gradient, within 0.25–25 MB.
    func testAutomaticBucketSizeCutsTheGradientInAboutEightWithinItsBounds() {
        XCTAssertEqual(GradientBucketer.automaticBucketBytes(count: 701_818), 701_818 * 4 / 8)  // resnet18-w16: 0.33 MB
        XCTAssertEqual(GradientBucketer.automaticBucketBytes(count: 44_710), 256 << 10)  // resnet18-w4: the floor
        XCTAssertEqual(GradientBucketer.automaticBucketBytes(count: 23_500_000), 23_500_000 * 4 / 8)  // resnet50-w64: 11.75 MB
        XCTAssertEqual(GradientBucketer.automaticBucketBytes(count: 500_000_000), 25 << 20)  // the cap
    }

    func testOneByteBucketsGiveOneBucketPerTensorAndHugeBucketsOne() throws {
        XCTAssertEqual(try GradientBucketer.partition(count: 9, tensorOffsets: [0, 2, 5, 5, 8], bucketBytes: 1),
                       [8..<9, 5..<8, 2..<5, 0..<2], "the empty tensor at 5 must not make an empty bucket")
        XCTAssertEqual(try GradientBucketer.partition(count: 9, tensorOffsets: [0, 2, 5], bucketBytes: .max), [0..<9])
    }

    func testEmptyBufferHasNoBucketsAndMissingOffsetsMeanOneTensor() throws {
        XCTAssertEqual(try GradientBucketer.partition(count: 0, tensorOffsets: [], bucketBytes: 4096), [])
        XCTAssertEqual(try GradientBucketer.partition(count: 0, tensorOffsets: [0, 0], bucketBytes: 4096), [])
        XCTAssertEqual(try GradientBucketer.partition(count: 1000, tensorOffsets: [], bucketBytes: 4), [0..<1000])
        // Without an offset at 0, the floats before the first offset still form a tensor of their own.
        XCTAssertEqual(try GradientBucketer.partition(count: 30, tensorOffsets: [10], bucketBytes: 4), [10..<30, 0..<10])
    }

    /// Random layouts against the definition: buckets tile 0..<count from the end, cut only at tensor
    /// starts, each holds at least `bucketBytes` unless it is the last, and stops growing once it does.
    func testRandomLayoutsSatisfyTheDefinition() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let count = Int.random(in: 0...5000, using: &generator)
            let tensorOffsets = ([0] + (0..<Int.random(in: 0...60, using: &generator)).map { _ in
                Int.random(in: 0...count, using: &generator)
            }).sorted()
            let bucketBytes = Int.random(in: 1...8000, using: &generator)
            let capacity = (bucketBytes + 3) / 4
            let buckets = try GradientBucketer.partition(count: count, tensorOffsets: tensorOffsets, bucketBytes: bucketBytes)
            let context = "count \(count), offsets \(tensorOffsets), bucketBytes \(bucketBytes) -> \(buckets)"

            var expectedEnd = count
            for (index, bucket) in buckets.enumerated() {
                XCTAssertEqual(bucket.upperBound, expectedEnd, "gap or overlap: \(context)")
                XCTAssertFalse(bucket.isEmpty, "empty bucket: \(context)")
                XCTAssertTrue(bucket.lowerBound == 0 || tensorOffsets.contains(bucket.lowerBound), "cut inside a tensor: \(context)")
                if index < buckets.count - 1 { XCTAssertGreaterThanOrEqual(bucket.count, capacity, "undersized: \(context)") }
                // Without its lowest tensor (the last one added) the bucket was still below capacity.
                let secondTensorStart = tensorOffsets.first { $0 > bucket.lowerBound } ?? count
                XCTAssertLessThan(bucket.upperBound - min(secondTensorStart, bucket.upperBound), capacity,
                                  "grew past capacity: \(context)")
                expectedEnd = bucket.lowerBound
            }
            XCTAssertEqual(expectedEnd, 0, "does not reach offset 0: \(context)")
        }
    }

    func testBadLayoutsThrowOneLineErrorsNamingTheValue() {
        let cases: [(count: Int, offsets: [Int], bucketBytes: Int, mentions: String)] = [
            (10, [0, 5, 3], 64, "tensorOffsets[2] = 3"),
            (10, [0, 11], 64, "tensorOffsets[1] = 11"),
            (10, [-1, 5], 64, "tensorOffsets[0] = -1"),
            (10, [0], 0, "bucketBytes = 0"),
            (-5, [], 64, "gradient count = -5"),
            (Int(Int32.max) + 1, [], .max, "element count"),
        ]
        for testCase in cases {
            XCTAssertThrowsError(try GradientBucketer.partition(count: testCase.count, tensorOffsets: testCase.offsets,
                                                                bucketBytes: testCase.bucketBytes)) { error in
                let description = "\(error)"
                XCTAssertTrue(description.contains(testCase.mentions), "\(description) should mention \(testCase.mentions)")
                XCTAssertFalse(description.contains("\n"), "multi-line error: \(description)")
            }
        }
    }

    /// Outside MPI_Init (as here) Open MPI would abort on MPI_Error_string; the error must still be thrown.
    func testMPIReturnCodesBecomeOneLineErrorsEvenWithoutMPIRunning() {
        XCTAssertNoThrow(try check(cmpi_success(), "MPI_Nothing"))
        XCTAssertThrowsError(try check(MPI_ERR_COUNT, "MPI_Allreduce")) { error in
            guard case let DistError.mpi(function, code, _) = error else { return XCTFail("not an MPI error: \(error)") }
            XCTAssertEqual(function, "MPI_Allreduce")
            XCTAssertEqual(code, MPI_ERR_COUNT)
            XCTAssertTrue("\(error)".hasPrefix("MPI_Allreduce failed with MPI error \(MPI_ERR_COUNT)"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }
}
