import Dispatch
import Foundation
import Synchronization
import Testing

/// The `steward` executable that `swift build --build-tests` put next to the test bundle, run as a
/// child process from the package root (where `Policies/` is).
///
/// Waiting for a child blocks its thread, so it happens on a thread of its own, never on Swift's
/// cooperative pool (one thread per core here): two tests blocking both pool threads while their
/// children waited on PostgreSQL's migration lock, held by a transaction of this process that then
/// had no thread to finish on, hung the suite. Nor on Dispatch's global queue: it runs about one
/// worker per core and adds one only after those have been blocked a while, so with several tests
/// waiting on children there, a socket read queued behind them could start seconds late.
enum BuiltBinary {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var url: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("steward")
    }

    /// Runs `body` with a new directory under the system's temporary one, removed afterwards.
    static func withDirectory<T>(_ name: String, _ body: (URL) async throws -> T) async throws -> T {
        #expect(FileManager.default.isExecutableFile(atPath: url.path), "build the steward binary first")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-\(name)-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory)
    }

    /// Runs `steward ARGUMENTS` to its end: exit status and standard output.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let result = try await runFully(arguments)
        return (result.status, result.output)
    }

    /// Runs `steward ARGUMENTS` to its end, or kills it after `timeout` (a command that should have
    /// refused but serves instead): exit status, standard output and standard error.
    static func runFully(
        _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> (status: Int32, output: String, errors: String, timedOut: Bool) {
        try await runProcess(
            url, arguments,
            environment: ["STEWARD_LOG_LEVEL": "error", "PATH": "/usr/bin:/bin"].merging(environment) {
                $1
            }, directory: directory ?? packageRoot, timeout: timeout)
    }

    /// Runs any program to its end, or kills it after `timeout`, off the cooperative pool.
    static func runProcess(
        _ executable: URL, _ arguments: [String], environment: [String: String], directory: URL,
        timeout: Duration
    ) async throws -> (status: Int32, output: String, errors: String, timedOut: Bool) {
        try await offPool {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.currentDirectoryURL = directory
            process.environment = environment
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let killed = Atomic<Bool>(false)
            let killer = DispatchWorkItem {
                guard process.isRunning else { return }
                killed.store(true, ordering: .relaxed)
                process.terminate()
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + Double(timeout.components.seconds), execute: killer)
            // Both pipes are drained at once, so a chatty child cannot block on a full one.
            let errors = Mutex(Data())
            let drained = DispatchSemaphore(value: 0)
            Thread {
                let data = err.fileHandleForReading.readDataToEndOfFile()
                errors.withLock { $0 = data }
                drained.signal()
            }.start()
            let output = out.fileHandleForReading.readDataToEndOfFile()
            drained.wait()
            process.waitUntilExit()
            killer.cancel()
            return (
                process.terminationStatus, String(decoding: output, as: UTF8.self),
                String(decoding: errors.withLock { $0 }, as: UTF8.self), killed.load(ordering: .relaxed)
            )
        }
    }

    /// Runs blocking work on a thread of its own, started at once, and waits for it without holding
    /// a pool thread.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result(catching: work)) }.start()
        }
    }
}
