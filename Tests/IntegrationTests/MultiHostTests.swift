import Foundation
import Train
import XCTest

/// Jobs across hosts over TCP: `scripts/netns-hosts.sh` makes two hosts of this machine (network
/// namespaces on a bridge, their own hostnames, one shared file system) and sets DIGITS_DIST_HOSTFILE;
/// `scripts/test.sh` runs this class under it. mpirun starts on the first host, as on a login node, and
/// reaches the second through Open MPI's rsh agent; one rank per host, so every byte between the ranks
/// crosses the network.
final class MultiHostTests: XCTestCase {
    var hostfile = ""
    var hosts: [String] = []
    var onHost = ""
    var network = ""
    var root = ""

    override func setUpWithError() throws {
        let environment = ProcessInfo.processInfo.environment
        try XCTSkipUnless(environment["DIGITS_DIST_HOSTFILE"] != nil,
                          "needs hosts: scripts/netns-hosts.sh swift test --skip-build --filter MultiHostTests")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: fsddRecordings), "shared FSDD data absent")
        hostfile = environment["DIGITS_DIST_HOSTFILE"]!
        hosts = environment["DIGITS_DIST_HOSTS", default: ""].split(separator: " ").map(String.init)
        onHost = environment["DIGITS_DIST_ON_HOST"]!
        network = environment["DIGITS_DIST_NETWORK"]!
        root = try temporaryFolder("hosts")
    }

    /// `mpirun` on the first host over the hostfile: TCP only, on the hosts' network, no binding (every
    /// "host" sees the same cores: binding would put both ranks on core 0).
    func acrossHosts(_ ranks: Int, _ arguments: [String], timeout: TimeInterval = 300,
                     whileRunning: ((pid_t) -> Void)? = nil) throws -> ProcessResult {
        try runProcess([onHost, hosts[0], "mpirun", "--allow-run-as-root", "--hostfile", hostfile, "--bind-to", "none",
                        "--mca", "btl", "tcp,self", "--mca", "oob_tcp_if_include", network, "--mca", "btl_tcp_if_include", network,
                        "-n", "\(ranks)", try digitsDistBinary()] + arguments, timeout: timeout, whileRunning: whileRunning)
    }

    /// No --threads: each rank takes the default of its host.
    func trainArguments(out: String, _ extra: [String] = []) -> [String] {
        ["train", "--out", out] + tinyTrainingOptions(seed: 7, cacheDirectory: root + "/cache", extra)
    }

    /// The same job with both ranks on this host.
    func oneHostWeights(_ extra: [String] = []) throws -> [Float] {
        try IntegrationTests.oneHostWeights(out: root + "/one-host", tinyTrainingOptions(seed: 7, cacheDirectory: root + "/cache", extra))
    }

    func testRanksRunOnTwoHostsAndPassTheCollectivesSelfTest() throws {
        let names = try runProcess([onHost, hosts[0], "mpirun", "--allow-run-as-root", "--hostfile", hostfile, "--bind-to", "none",
                                    "--mca", "oob_tcp_if_include", network, "-n", "2", "hostname"], timeout: 120)
        XCTAssertEqual(names.status, 0, names.summary)
        XCTAssertEqual(Set(names.stdout.split(separator: "\n").map(String.init)), ["ddhost1", "ddhost2"], names.summary)
        assertCollectivesPassed(try acrossHosts(2, ["selftest", "collectives"]), ranks: 2)
    }

    /// Each host sees both cores and one rank, so its rank runs 2 BLAS threads where the one-host job runs 1:
    /// the bits must not care (and summary.json says what each rank ran).
    func testTrainingAcrossHostsIsBitwiseTheOneHostRun() throws {
        let out = root + "/two-hosts"
        let run = try acrossHosts(2, trainArguments(out: out))
        XCTAssertEqual(run.status, 0, run.summary)
        XCTAssertTrue(run.stderr.contains("2 ranks × 2 BLAS threads"), run.stderr)
        XCTAssertEqual(try parameters(out + "/final.ckpt"), try oneHostWeights())
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any]
        XCTAssertEqual(summary?["hosts"] as? [String], ["ddhost1", "ddhost2"])
        XCTAssertEqual(summary?["blas_threads"] as? [Int], [2, 2])
    }

    /// kill -9 of the rank on the second host ends the job; resuming across the hosts gives the weights
    /// of a run that never stopped.
    func testKilledRemoteRankThenResumeIsBitwise() throws {
        let long = ["--set", "training.epochs=10"]  // 120 steps: the kill after step 4 lands mid-run
        let expected = try oneHostWeights(long)
        let out = root + "/killed"
        let killed = try acrossHosts(2, trainArguments(out: out, long)) { _ in
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline,
                  ((try? FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints")) ?? []).filter({ $0.hasSuffix(".ckpt") }).count < 2 {
                usleep(20_000)
            }
            if let remote = self.digitsDistProcess(onHost: "ddhost2") { kill(remote, SIGKILL) }
        }
        XCTAssertNotEqual(killed.status, 0, killed.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/final.ckpt"), "the kill came too late to test anything")
        let resumed = try acrossHosts(2, trainArguments(out: out, long + ["--resume"]))
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("resuming at step"), resumed.stderr)
        XCTAssertEqual(try parameters(out + "/final.ckpt"), expected, "resumed weights must be bitwise equal")
    }

    /// cluster/mpirun-hostfile.sh as a user runs it, with the network named by DIGITS_DIST_NETWORK.
    func testHostfileLauncherTrainsAcrossHosts() throws {
        let binaryFolder = URL(fileURLWithPath: try digitsDistBinary()).deletingLastPathComponent().path
        let path = binaryFolder + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let launch = { (hostfile: String, network: String, run: String) in
            try runProcess([self.onHost, self.hosts[0], "env", "PATH=\(path)", "DIGITS_DIST_NETWORK=\(network)",
                            repositoryRoot + "/cluster/mpirun-hostfile.sh", hostfile, repositoryRoot + "/configs/fsdd.yaml",
                            self.root + "/runs/" + run] + tinyTrainingOptions(seed: 7, cacheDirectory: nil), timeout: 120)
        }
        let missing = try launch(hostfile, "10.99.0.0/24", "hostfile")
        XCTAssertNotEqual(missing.status, 0, missing.summary)
        XCTAssertTrue(missing.stderr.hasPrefix("error: DIGITS_DIST_NETWORK=10.99.0.0/24: no such interface or subnet on ddhost1"),
                      missing.summary)
        let run = try launch(hostfile, network, "hostfile")
        XCTAssertEqual(run.status, 0, run.summary)
        XCTAssertFalse(run.stderr.contains("Warning"), run.summary)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/runs/.cache"), "the shared cache beside the run folder")
        let summary = try String(contentsOfFile: root + "/runs/hostfile/summary.json", encoding: .utf8)
        XCTAssertTrue(summary.contains("ddhost2"), summary)

        // A host that does not answer: the launch ends promptly, failed, naming it.
        let unreachable = root + "/unreachable-hosts"
        try "\(hosts[0]) slots=1\n10.77.0.99 slots=1\n".write(toFile: unreachable, atomically: true, encoding: .utf8)
        let failed = try launch(unreachable, network, "unreachable")
        XCTAssertFalse(failed.timedOut, failed.summary)
        XCTAssertNotEqual(failed.status, 0, failed.summary)
        XCTAssertTrue(failed.stderr.contains("10.77.0.99"), failed.summary)
    }

    /// The digits-dist process running in host `name`'s network namespace (its rank: the rsh agent
    /// starts it through a daemon that leaves the launcher's process tree).
    func digitsDistProcess(onHost name: String) -> pid_t? {
        var namespace = stat()
        guard stat("/run/netns/" + name, &namespace) == 0 else { return nil }
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return processes.compactMap { pid_t($0) }.first { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("digits-dist") == true
                && (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")) == "net:[\(namespace.st_ino)]"
        }
    }
}
