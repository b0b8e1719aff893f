import Foundation
import Train
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The repository this test target belongs to, and the real FSDD recordings beside it (never copied in).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
let fsddRecordings = repositoryRoot + "/../shared/data/fsdd/recordings"

/// How a launched process ended, with everything it printed.
struct ProcessResult {
    /// The exit code, or 128 + signal number if a signal killed it (shell convention).
    var status: Int32
    var stdout: String
    var stderr: String
    /// The timeout expired and the process tree was SIGKILLed.
    var timedOut: Bool
    var seconds: Double

    /// For assertion messages: a failing run should show what it printed.
    var summary: String {
        "status \(status)\(timedOut ? " (timed out)" : ""), \(String(format: "%.1f", seconds)) s\n"
            + "--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}

struct IntegrationTestError: Error, CustomStringConvertible {
    var description: String
}

/// The `digits-dist` executable built next to this test bundle (`swift test` links it too, as part of
/// building the package). `DIGITS_DIST_BINARY` overrides the location.
func digitsDistBinary() throws -> String {
    if let override = ProcessInfo.processInfo.environment["DIGITS_DIST_BINARY"] { return override }
    // The test bundle sits in .build/<triple>/<config>/, next to the executables of the same build.
    let buildDirectory = Bundle.main.bundleURL.hasDirectoryPath
        ? Bundle.main.bundleURL : Bundle.main.bundleURL.deletingLastPathComponent()
    let binary = buildDirectory.appendingPathComponent("digits-dist").path
    guard FileManager.default.isExecutableFile(atPath: binary) else {
        throw IntegrationTestError(description: "digits-dist binary not found at \(binary); run `swift build` first")
    }
    return binary
}

/// Runs `mpirun -n ranks <executable> args…` (executable defaults to the built digits-dist) and
/// collects its output; past `timeout` the whole process tree is SIGKILLed and `timedOut` is set.
///
/// `--allow-run-as-root` because the container runs everything as root; `--oversubscribe` because
/// tests start more ranks than the machine has cores. No btl/MCA settings were needed here: Open MPI
/// 4.1's shared-memory btl (vader) works in this container with its default CMA single-copy
/// mechanism (the 4 MB all-reduces of `selftest collectives` take that path). If a container forbids
/// process_vm_readv, add `OMPI_MCA_btl_vader_single_copy_mechanism=none` to `environment`.
func mpirun(_ ranks: Int, _ args: [String], timeout: TimeInterval, executable: String? = nil,
            environment: [String: String] = [:], whileRunning: ((pid_t) -> Void)? = nil) throws -> ProcessResult {
    let program = try executable ?? digitsDistBinary()
    return try runProcess(["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "\(ranks)", program] + args,
                          timeout: timeout, environment: environment, whileRunning: whileRunning)
}

/// Spawns `argv` (searched in PATH) in a new process group with stdin from /dev/null, waits at most
/// `timeout` seconds, and returns its exit status and output. `whileRunning` gets the child's pid on
/// another thread as soon as it runs (to signal or kill it mid-run).
///
/// On timeout, killing the process group is not enough: mpirun puts every rank in a process group of
/// its own, so the kill walks /proc for all descendants and SIGKILLs each one as well.
func runProcess(_ argv: [String], timeout: TimeInterval, environment: [String: String] = [:],
                whileRunning: ((pid_t) -> Void)? = nil) throws -> ProcessResult {
    let start = Date()
    var stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
    guard pipe(&stdoutPipe) == 0, pipe(&stderrPipe) == 0 else {
        throw IntegrationTestError(description: "pipe() failed: \(String(cString: strerror(errno)))")
    }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
    for fd in stdoutPipe + stderrPipe { posix_spawn_file_actions_addclose(&actions, fd) }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attributes, 0)

    let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
    let cArguments = argv.map { strdup($0) } + [nil]
    let cEnvironment = variables.map { strdup($0) } + [nil]
    defer { (cArguments + cEnvironment).forEach { free($0) } }

    var pid: pid_t = 0
    let spawnError = posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
    close(stdoutPipe[1])
    close(stderrPipe[1])
    guard spawnError == 0 else {
        close(stdoutPipe[0])
        close(stderrPipe[0])
        throw IntegrationTestError(description: "cannot start \(argv[0]): \(String(cString: strerror(spawnError)))")
    }

    // Drain both pipes while waiting, or a chatty child blocks on a full pipe.
    let collected = CollectedOutput()
    let readers = DispatchGroup()
    for (index, fd) in [stdoutPipe[0], stderrPipe[0]].enumerated() {
        DispatchQueue.global().async(group: readers) {
            let data = FileHandle(fileDescriptor: fd, closeOnDealloc: true).readDataToEndOfFile()
            collected.lock.lock()
            collected.output[index] = data
            collected.lock.unlock()
        }
    }
    let exited = DispatchSemaphore(value: 0)
    let child = pid
    DispatchQueue.global().async {
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 && errno == EINTR {}
        collected.waitStatus = status
        exited.signal()
    }
    if let whileRunning { DispatchQueue.global().async { whileRunning(child) } }
    let timedOut = exited.wait(timeout: .now() + timeout) == .timedOut
    if timedOut {
        killProcessTree(child)
        exited.wait()
    }
    readers.wait()
    let output = collected.output, waitStatus = collected.waitStatus

    let signal = waitStatus & 0x7f
    return ProcessResult(status: signal == 0 ? (waitStatus >> 8) & 0xff : 128 + signal,
                         stdout: String(decoding: output[0], as: UTF8.self),
                         stderr: String(decoding: output[1], as: UTF8.self),
                         timedOut: timedOut, seconds: Date().timeIntervalSince(start))
}

/// Written by the reader and waiter threads; read after `readers.wait()` / `exited.wait()`.
private final class CollectedOutput: @unchecked Sendable {
    let lock = NSLock()
    var output = [Data(), Data()]
    var waitStatus: Int32 = 0
}

/// SIGKILLs `root`'s process group and every descendant of `root` (found through /proc; listed before
/// anything dies, so none escapes by being reparented to init), then waits up to 10 s for the
/// descendants to be gone, since SIGKILL takes effect asynchronously.
func killProcessTree(_ root: pid_t) {
    let descendants = descendantProcesses(of: root)
    kill(-root, SIGKILL)
    for pid in descendants { kill(pid, SIGKILL) }
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline, !descendants.allSatisfy(processIsGone) { usleep(10_000) }
}

func descendantProcesses(of root: pid_t) -> [pid_t] {
    var children: [pid_t: [pid_t]] = [:]
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        guard let pid = pid_t(entry), let parent = processStat(pid)?.parent else { continue }
        children[parent, default: []].append(pid)
    }
    var found: [pid_t] = []
    var pending = [root]
    while let pid = pending.popLast() {
        let next = children[pid] ?? []
        found += next
        pending += next
    }
    return found
}

/// State letter and parent pid from /proc/<pid>/stat; nil once the process is gone.
func processStat(_ pid: pid_t) -> (state: Character, parent: pid_t)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let commandEnd = stat.lastIndex(of: ")") else { return nil }
    // After "pid (command)": state, ppid, ...; the command may itself contain spaces or parentheses.
    let fields = stat[stat.index(after: commandEnd)...].split(separator: " ")
    guard fields.count > 1, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
    return (state, parent)
}

/// True when `pid` no longer runs (gone, or a zombie nobody has reaped yet).
func processIsGone(_ pid: pid_t) -> Bool {
    guard let stat = processStat(pid) else { return true }
    return stat.state == "Z" || stat.state == "X"
}

/// The tiny training the launcher tests share (options after `train --out RUN`): a width-4 ResNet-18 on
/// 5% of FSDD (theo validating), 2 epochs of 12 steps, a checkpoint every two steps; `cacheDirectory`
/// nil leaves the cache folder to the launcher.
func tinyTrainingOptions(seed: Int, cacheDirectory: String?, _ extra: [String] = []) -> [String] {
    ["--data", fsddRecordings, "--val-speakers", "theo"] + (cacheDirectory.map { ["--cache-dir", $0] } ?? [])
        + ["architecture.backbone=resnet18", "architecture.width=4", "training.batch_size=8", "training.epochs=2",
           "dataset.data_sample=0.05", "environment.seed=\(seed)", "training.checkpoint_every_steps=2"].flatMap { ["--set", $0] }
        + extra
}

/// The weights a checkpoint holds.
func parameters(_ path: String) throws -> [Float] {
    try XCTUnwrap(Checkpoint.read(from: path).section("parameters"))
}

/// `mpirun -n 2 digits-dist train --out out OPTIONS` with both ranks on this host (shared memory), and its
/// final weights: the reference the other launchers' runs are compared with bitwise.
func oneHostWeights(out: String, _ options: [String]) throws -> [Float] {
    let run = try mpirun(2, ["train", "--out", out] + options, timeout: 300)
    guard run.status == 0 else { throw IntegrationTestError(description: "the one-host reference run failed: \(run.summary)") }
    return try parameters(out + "/final.ckpt")
}

extension XCTestCase {
    /// A fresh folder under the temporary directory, removed when the test ends (passed or not).
    func temporaryFolder(_ kind: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/digits-dist-\(kind)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
