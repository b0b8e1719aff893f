import Foundation
import XCTest

/// The repository root (this file is Tests/DatasetsTests/TestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The real FSDD recordings shared with the project (never copied into the repository).
let fsddRecordings = repositoryRoot + "/../shared/data/fsdd/recordings"

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> String {
    let path = FileManager.default.temporaryDirectory.path + "/digits-dist-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func touch(_ path: String) {
    try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                             withIntermediateDirectories: true)
    precondition(FileManager.default.createFile(atPath: path, contents: Data()), "could not create \(path)")
}
