import Foundation
import StewardTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The job engine across processes (issue 16): four `steward jobs work` processes on one database
/// (a SQLite file, or a PostgreSQL schema), one of them killed with SIGKILL ten times mid-run and
/// started again. Every probe job must succeed, and its effect — one audit entry per step — must be
/// in the database exactly once: the audit chain grows by exactly steps × jobs, and stays intact.
@Suite struct JobWorkers {
    static let jobs = 1_000
    static let steps = 2

    final class Worker: @unchecked Sendable {
        let process = Process()

        init(arguments: [String], log: URL) throws {
            process.executableURL = BuiltBinary.url
            process.arguments = arguments
            process.currentDirectoryURL = BuiltBinary.packageRoot
            process.environment = ["STEWARD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"]
            if !FileManager.default.fileExists(atPath: log.path) {
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        func kill9() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    static func entries(_ output: String) -> Int? {
        guard let range = output.range(of: #"audit chain intact: (\d+) entries"#, options: .regularExpression)
        else { return nil }
        return Int(output[range].split(separator: " ")[3])
    }

    @Test(.timeLimit(.minutes(5)))
    func fourWorkerProcessesRunEveryJobExactlyOnceThroughTenKills() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("jobs") { directory in
                let data = directory.appendingPathComponent("data").path
                let log = directory.appendingPathComponent("workers.log")
                let enqueue = try await BuiltBinary.run(
                    [
                        "jobs", "probe", "--count", "\(Self.jobs)", "--steps", "\(Self.steps)", "--work-ms", "20",
                        "--data-dir", data,
                    ] + database)
                #expect(enqueue.status == 0, "\(enqueue.output)")
                let before = try #require(
                    Self.entries(try await BuiltBinary.run(["audit", "verify", "--data-dir", data] + database).output))

                let arguments =
                    [
                        "jobs", "work", "--until-idle", "--concurrency", "4", "--lease-seconds", "2",
                        "--heartbeat-seconds", "0.5", "--poll-seconds", "0.2", "--data-dir", data,
                    ] + database
                var workers = try (0..<4).map { _ in try Worker(arguments: arguments, log: log) }
                for kill in 0..<10 {
                    try await Task.sleep(for: .milliseconds(400))
                    let victim = kill % workers.count
                    let killed = workers[victim]
                    // Killed mid-job: once the jobs list shows it holding a lease (a loaded machine
                    // can take longer than the pause to start a process and lease its first job).
                    let holder = "leased by \(ProcessInfo.processInfo.hostName)/\(killed.process.processIdentifier)"
                    let patience = ContinuousClock.now + .seconds(30)
                    while killed.process.isRunning && ContinuousClock.now < patience {
                        let running = try await BuiltBinary.run(
                            ["jobs", "list", "--state", "running", "--limit", "10000", "--data-dir", data] + database)
                        if running.output.contains(holder + "\n") { break }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    try await BuiltBinary.offPool { killed.kill9() }
                    workers[victim] = try Worker(arguments: arguments, log: log)
                }
                let all = workers
                let deadline = ContinuousClock.now + .seconds(240)
                while all.contains(where: { $0.process.isRunning }) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                }
                for worker in all where worker.process.isRunning { worker.kill9() }
                let workerLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                #expect(all.allSatisfy { $0.process.terminationStatus == 0 }, "\(workerLog.suffix(2_000))")

                let list = try await BuiltBinary.run(
                    ["jobs", "list", "--kind", "steward.probe", "--limit", "10000", "--data-dir", data] + database)
                #expect(list.status == 0)
                #expect(
                    list.output.contains("\(Self.jobs) job(s) of kind steward.probe: \(Self.jobs) succeeded"),
                    "\(list.output.suffix(500))")
                // The kills landed mid-job: some jobs were taken over after their lease expired.
                let retaken = list.output.split(separator: "\n").filter {
                    !$0.contains("attempt 1/") && $0.contains("succeeded  ")
                }
                #expect(!retaken.isEmpty, "no job was taken over after a kill")

                let verify = try await BuiltBinary.run(["audit", "verify", "--data-dir", data] + database)
                #expect(verify.status == 0)
                #expect(Self.entries(verify.output) == before + Self.jobs * Self.steps, "\(verify.output)")
            }
        }
    }

    /// `steward serve` runs jobs too: probes enqueued from the command line finish while it serves,
    /// and SIGTERM still stops it cleanly.
    @Test func serveRunsJobsBesideTheAPI() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("serve-jobs") { directory in
                let data = directory.appendingPathComponent("data").path
                // No runner yet: the probe says so and fails, rather than waiting or claiming success.
                let alone = try await BuiltBinary.runFully(
                    ["jobs", "probe", "--wait", "0.5", "--data-dir", data] + database)
                #expect(alone.status == 1)
                #expect(alone.errors.contains("1 of 1 probe job(s) not finished after 0.5 s"), "\(alone.errors)")
                let server = try ServerProcess(
                    data: data, database: database, log: directory.appendingPathComponent("serve.log"),
                    environment: ["STEWARD_JOBS_POLL_SECONDS": "0.2"])
                defer { server.kill() }
                try await server.waitUntilReady()
                let probe = try await BuiltBinary.run(
                    ["jobs", "probe", "--count", "5", "--steps", "2", "--wait", "30", "--data-dir", data] + database)
                #expect(probe.status == 0)
                #expect(probe.output.contains("5 probe job(s) finished: a runner is working"), "\(probe.output)")
                #expect(try await server.terminate() == 0)
            }
        }
    }
}

/// The import crash test, on jobs (issue 16): `steward consent import` killed with SIGKILL mid-file,
/// then run again, waits for the dead run's lease, resumes after its last committed batch and
/// records every line exactly once (the audit chain holds exactly two entries per person).
@Suite struct ImportCrash {
    @Test(.timeLimit(.minutes(5)))
    func anImportKilledMidFileResumesAndRecordsEveryLineOnce() async throws {
        try await withScratchDatabase { database in
            try await BuiltBinary.withDirectory("import-crash") { directory in
                // Large enough, in small batches, that the kill lands long before the end even on an
                // idle machine (20,000 lines in batches of 250 once finished between the poll that saw
                // 500 and the kill).
                let people = 40_000
                let file = directory.appendingPathComponent("people.csv")
                var text = "email,purpose,decision,noticeId,noticeVersion\n"
                for index in 0..<people {
                    text += "crash\(index)@example.com,analytics,granted,privacy-policy,2026-01\n"
                }
                try text.write(to: file, atomically: true, encoding: .utf8)
                let data = directory.appendingPathComponent("data").path
                let log = directory.appendingPathComponent("import.log")
                let arguments = ["consent", "import", file.path, "--batch-size", "50", "--data-dir", data] + database
                let first = try JobWorkers.Worker(arguments: arguments, log: log)
                // Killed once some batches committed — its progress line on standard error counts
                // committed records (read from its log, so nothing else touches the database) — and
                // long before the end.
                let deadline = ContinuousClock.now + .seconds(120)
                var progressed = false
                while !progressed && first.process.isRunning && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                    let shown = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                    let counts = shown.matches(of: /(\d+) imported/).compactMap { Int($0.1) }
                    progressed = (counts.max() ?? 0) >= 500
                }
                let running = first.process.isRunning
                try await BuiltBinary.offPool { first.kill9() }
                #expect(
                    progressed,
                    "no committed batch shown before \(running ? "the deadline" : "the import ended"): \(((try? String(contentsOf: log, encoding: .utf8)) ?? "").suffix(1_000))"
                )
                // The bar shows how far the committed lines reach, not how far the reader (a MiB ahead)
                // has read: on lines of one length, the percent follows the count.
                let bars = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").matches(of: /(\d+)% (\d+) imported/)
                for bar in bars {
                    let (shown, imported) = (Int(bar.1)!, Int(bar.2)!)
                    #expect(
                        abs(shown - imported * 100 / people) <= 2, "\(shown)% shown at \(imported) of \(people) lines")
                }
                let stopped = try await BuiltBinary.run(["consent", "imports", "--data-dir", data] + database)
                #expect(stopped.output.contains("1 import(s): 0 finished, 1 unfinished"), "\(stopped.output)")

                // The dead run's lease, as `consent imports` shows it: a rerun that starts well before it
                // ends must wait for it. (On a loaded machine the rerun may reach the lease after it
                // ended: its start, migrations and key check took seconds on a loaded PostgreSQL run.)
                let leaseEnd = stopped.output.firstMatch(of: /lease until (\S+)\)/).flatMap {
                    let formatter = ISO8601DateFormatter()
                    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                    return formatter.date(from: String($0.1))
                }
                #expect(leaseEnd != nil, "\(stopped.output)")
                let rerunStarted = Date()
                // The rest of 40,000 lines in batches of 50: minutes on a loaded PostgreSQL run.
                let again = try await BuiltBinary.runFully(arguments, timeout: .seconds(400))
                #expect(again.status == 0, "\(again.errors.suffix(1_000))")
                if let leaseEnd, rerunStarted < leaseEnd.addingTimeInterval(-10) {
                    #expect(again.errors.contains("another run of this import holds it until"))
                }
                #expect(again.errors.contains("resuming an interrupted import of this file after line"))
                let listed = try await BuiltBinary.run(["consent", "imports", "--data-dir", data] + database)
                #expect(
                    listed.output.contains("  \(people) accepted, 0 rejected, \(people + 1) lines read"),
                    "\(listed.output)")
                let verify = try await BuiltBinary.run(["audit", "verify", "--data-dir", data] + database)
                // key.bound, the import's start (the resumed run starts nothing new), a subject.created
                // and a consent.recorded per person, the import's finish.
                #expect(
                    verify.output.contains("audit chain intact: \(1 + 1 + 2 * people + 1) entries verified"),
                    "\(verify.output)")
            }
        }
    }
}
