import Audio
import Foundation
import XCTest

/// Runs `digits-dist selftest …` under real mpirun (see MPIRun.swift); needs a prior `swift build`.
final class MPITests: XCTestCase {
    func testCollectivesOneRank() throws { try checkCollectives(ranks: 1) }
    func testCollectivesTwoRanks() throws { try checkCollectives(ranks: 2) }
    func testCollectivesThreeRanks() throws { try checkCollectives(ranks: 3) }
    func testCollectivesFourRanks() throws { try checkCollectives(ranks: 4) }

    private func checkCollectives(ranks: Int) throws {
        let result = try mpirun(ranks, ["selftest", "collectives"], timeout: 300)
        assertCollectivesPassed(result, ranks: ranks)
        if ranks > 1 {
            // The last rank as root only differs from rank 0 with more than one rank.
            for check in ["broadcast [UInt8] count=77 root=\(ranks - 1)", "gatherv Float counts=rank*3 root=\(ranks - 1)"] {
                XCTAssertTrue(result.stdout.contains("ok   \(check)"), "missing \(check)\n\(result.summary)")
            }
        }
    }

    /// Without mpirun, MPI_Init makes a singleton world of one rank.
    func testCollectivesSingletonWithoutMpirun() throws {
        let result = try runProcess([digitsDistBinary(), "selftest", "collectives"], timeout: 120)
        assertCollectivesPassed(result, ranks: 1)
    }

    /// `bench allreduce` runs real steps on two ranks and prints a row per variant with the buckets it cut.
    /// Nothing is asserted of speed (timed tests lie on a shared machine).
    func testAllReduceBenchmarkRunsEveryVariantOnTwoRanks() throws {
        let result = try mpirun(2, ["bench", "allreduce", "--width", "4", "--batch", "2", "--megabytes", "0.01", "1",
                                    "--rounds", "1", "--steps", "1", "--threads", "1"], timeout: 300)
        XCTAssertEqual(result.status, 0, result.summary)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("resnet18 width 4, batch 2 per rank, 1 BLAS threads per rank; 2 ranks on 1 hosts") },
                      result.summary)
        XCTAssertTrue(lines.contains { $0.contains("on 2 ranks; a step without it:") }, result.summary)
        let rows = lines.filter { $0.contains("blocking") || $0.contains(" MB ") }
        XCTAssertEqual(rows.count, 5, "blocking, then each size with and without progress\n" + result.summary)
        XCTAssertEqual(rows.filter { $0.contains("progress per layer") }.count, 2, result.summary)
        XCTAssertEqual(rows.filter { $0.contains("none until the end") }.count, 2, result.summary)
        // resnet18-w4 has about 44,000 parameters (176 KB): 0.01 MB buckets cut it into many, 1 MB into one.
        // A row's bucket count is its first whole number (sizes print with decimals).
        let bucketCounts = rows.map { $0.split(separator: " ").compactMap { Int($0) }.first ?? 0 }
        XCTAssertEqual(bucketCounts[0], 1, result.summary)
        XCTAssertGreaterThan(bucketCounts[1], 5, result.summary)
        XCTAssertEqual(bucketCounts[1], bucketCounts[2], result.summary)
        XCTAssertEqual(bucketCounts[3], 1, result.summary)
        XCTAssertTrue(lines.contains("training's bucket size for this model (training.bucket_megabytes: 0): 0.25 MB"), result.summary)
    }

    /// `bench train --set augmentation.noise_folder=…` on two ranks: both build the noise folder's cache
    /// together (one rank alone would wait for the other forever), rank 0 times the crops beside the step.
    func testTrainBenchmarkTimesCropsWithRecordedNoiseOnTwoRanks() throws {
        let root = try temporaryFolder("bench-noise")
        try FileManager.default.createDirectory(atPath: root + "/noise", withIntermediateDirectories: true)
        try AudioFile.writeWAV(path: root + "/noise/hum.wav", samples: (0..<8_000).map { Float(0.2 * sin(Double($0) * 0.05)) },
                               sampleRate: 16_000)
        let result = try mpirun(2, ["bench", "train", "--width", "4", "--batch", "2", "--steps", "1", "--threads", "1", "--no-peak",
                                    "--set", "augmentation.noise_folder=" + root + "/noise"],
                                timeout: 300, environment: ["DIGITS_DIST_CACHE": root + "/cache"])
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertEqual(result.stderr.components(separatedBy: "augmentation.noise_folder: 1 noise recordings").count, 2, result.summary)
        XCTAssertTrue(result.stdout.contains("training crops of one step (augmentation.noise_folder=\(root)/noise): "), result.summary)
    }

    /// A rank SIGKILLed while the others wait in an all-reduce must end the whole job, promptly and
    /// with a failure status, leaving no rank behind (Open MPI's default on abnormal exit).
    func testKilledRankEndsJobWithinAMinute() throws {
        let result = try mpirun(3, ["selftest", "die", "--rank", "1", "--after", "3"], timeout: 60)
        XCTAssertFalse(result.timedOut, "mpirun hung after a rank died\n\(result.summary)")
        XCTAssertNotEqual(result.status, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("rank 1 raising SIGKILL after 3 all-reduces"), result.summary)
        let pids = rankPids(in: result.stdout)
        XCTAssertEqual(pids.count, 3, result.summary)
        for pid in pids { XCTAssertTrue(processIsGone(pid), "rank process \(pid) survived mpirun\n\(result.summary)") }
    }

    /// The helper itself: a job that never ends is killed at the timeout, ranks included.
    func testMpirunHelperKillsHungJobAtTimeout() throws {
        let result = try mpirun(2, ["-c", "echo \"rank $OMPI_COMM_WORLD_RANK pid $$\"; exec sleep 600"], timeout: 3, executable: "/bin/sh")
        XCTAssertTrue(result.timedOut, result.summary)
        XCTAssertLessThan(result.seconds, 30, result.summary)
        XCTAssertNotEqual(result.status, 0, result.summary)
        let pids = rankPids(in: result.stdout)
        XCTAssertEqual(pids.count, 2, result.summary)
        for pid in pids { XCTAssertTrue(processIsGone(pid), "rank process \(pid) survived the timeout kill") }
    }

    /// The pids printed as "rank <r> pid <pid>" lines.
    private func rankPids(in stdout: String) -> [pid_t] {
        stdout.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 4 && words[0] == "rank" && words[2] == "pid" ? pid_t(words[3]) : nil
        }
    }
}

/// The collectives rank 0 must report as passed (names as printed by `selftest collectives`).
let expectedCollectiveChecks = [
    "barrier",
    "allReduceSum Float count=0", "allReduceSum Float count=1", "allReduceSum Float count=7",
    "allReduceSum Float count=1048583", "allReduceSum Double count=7", "allReduceSum Int64 count=1000",
    "allReduceSum Int64 scalar above 2^53", "allReduceMax Double scalar", "allReduceMax Double count=1000",
    "iAllReduceSum Float counts=[1, 7, 100003, 0] via test, wait, waitAll",
    "GradientBucketer overlapped count=100003 bucketBytes=1 buckets=40",
    "GradientBucketer overlapped count=100003 bucketBytes=65536",
    "GradientBucketer overlapped count=0", "GradientBucketer blocking count=100003 bucketBytes=4194304",
    "broadcast Float buffer count=1001 root=0", "broadcast [UInt8] count=77 root=0", "broadcast Int root=0",
    "gatherv Float counts=rank*3 root=0", "gatherv Int32 counts=rank*3 root=0", "gatherv Int64 counts=rank*3 root=0",
    "gather Int64 scalar", "split color=rank%2 key=-rank",
    "GradientBucketer rejects layouts differing between ranks on every rank",
]

/// `selftest collectives` on `ranks` ranks passed every check (however it was launched: mpirun, srun, none).
func assertCollectivesPassed(_ result: ProcessResult, ranks: Int, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(result.timedOut, result.summary, file: file, line: line)
    XCTAssertEqual(result.status, 0, result.summary, file: file, line: line)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    let checkLines = lines.filter { $0.hasPrefix("ok   ") || $0.hasPrefix("FAIL ") }
    XCTAssertEqual(checkLines.filter { $0.hasPrefix("FAIL") }, [], result.summary, file: file, line: line)
    XCTAssertTrue(lines.contains("selftest collectives: all \(checkLines.count) checks passed on \(ranks) ranks"),
                  result.summary, file: file, line: line)
    XCTAssertTrue(lines.contains("ok   rank/size: \(ranks) ranks, gather of ranks in order"), result.summary,
                  file: file, line: line)
    for check in expectedCollectiveChecks {
        XCTAssertTrue(checkLines.contains { $0.hasPrefix("ok   \(check)") }, "missing check \(check)\n\(result.summary)",
                      file: file, line: line)
    }
}
