import Foundation
import XCTest

/// Every file-system failure of `--out`, the cache folder and checkpoints is one line naming the path and the
/// problem, and a non-zero exit: never Foundation's dump of an NSError. The read-only and full disks are
/// real tmpfs mounts (root, as CI is).
final class FileSystemErrorTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        root = try temporaryFolder("fs")
    }

    /// A tmpfs at `name` under the test's folder, unmounted at teardown.
    func mountTmpfs(_ name: String, options: String) throws -> String {
        let point = root + "/" + name
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let mounted = try runProcess(["mount", "-t", "tmpfs", "-o", options, "tmpfs", point], timeout: 30)
        try XCTSkipUnless(mounted.status == 0, "cannot mount a tmpfs here (needs root): \(mounted.stderr)")
        addTeardownBlock { _ = try? runProcess(["umount", point], timeout: 30) }
        return point
    }

    /// Trains a sliver of FSDD with `out` and `cache`; asserts failure with exactly one error line, which it returns.
    func failingTrain(out: String, cache: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try runProcess([try digitsDistBinary(), "train", "--out", out, "--threads", "1"]
                                 + tinyTrainingOptions(seed: 1, cacheDirectory: cache, ["--set", "training.epochs=1"]),
                                 timeout: 300)
        XCTAssertNotEqual(run.status, 0, run.summary, file: file, line: line)
        XCTAssertFalse(run.stderr.contains("Domain="), run.summary, file: file, line: line)
        let errors = run.stderr.split(separator: "\n").filter { $0.contains("error:") }
        XCTAssertEqual(errors.count, 1, run.summary, file: file, line: line)
        return errors.first.map(String.init) ?? ""
    }

    func testOutOrCacheWhereAFileIsNamesThePath() throws {
        let file = root + "/afile"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        XCTAssertEqual(try failingTrain(out: file, cache: root + "/cache"),
                       "digits-dist: error: \(file): is a file, where a folder is needed")
        XCTAssertEqual(try failingTrain(out: file + "/run", cache: root + "/cache"),
                       "digits-dist: error: \(file)/run: a part of this path is a file, where a folder is needed")
        XCTAssertEqual(try failingTrain(out: root + "/run", cache: file),
                       "digits-dist: error: \(file): is a file, where a folder is needed")
    }

    func testReadOnlyDiskNamesThePath() throws {
        let readOnly = try mountTmpfs("ro", options: "ro,size=1m")
        XCTAssertEqual(try failingTrain(out: readOnly + "/run", cache: root + "/cache"),
                       "digits-dist: error: \(readOnly)/run: Read-only file system")
        XCTAssertEqual(try failingTrain(out: root + "/run", cache: readOnly + "/cache"),
                       "digits-dist: error: \(readOnly)/cache: Read-only file system")
    }

    /// 300 KB holds the run folder's first files but neither the feature cache (about 1 MB for this sliver)
    /// nor a checkpoint.
    func testFullDiskNamesTheFileAndLeavesNoPartialCache() throws {
        let full = try mountTmpfs("full", options: "size=300k")
        let cacheLine = try failingTrain(out: root + "/run-cache", cache: full + "/cache")
        XCTAssertTrue(cacheLine.hasPrefix("digits-dist: error: \(full)/cache/"), cacheLine)
        XCTAssertTrue(cacheLine.hasSuffix("(No space left on device)"), cacheLine)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: full + "/cache"), [], "the partial cache is removed")
        let checkpointLine = try failingTrain(out: full + "/run", cache: root + "/cache")
        XCTAssertTrue(checkpointLine.hasPrefix("digits-dist: error: \(full)/run/"), checkpointLine)
        XCTAssertTrue(checkpointLine.hasSuffix("No space left on device"), checkpointLine)
    }
}
