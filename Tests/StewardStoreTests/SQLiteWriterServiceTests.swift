import Foundation
import Logging
import ServiceLifecycle
import StewardServices
import StewardSQLite
import StewardTesting
import Testing

/// The SQLite writer as a service of the process's one group (issue 16): while it runs it applies
/// every write; on graceful shutdown it commits what is queued — every write it acknowledged is in the
/// file afterwards — and then refuses writes with `store.unavailable`, never accepting one it will
/// not apply.
@Suite(.enabled(if: TestBackend.current == .sqlite)) struct SQLiteWriterService {
    @Test(.timeLimit(.minutes(1))) func aGracefulStopCommitsEveryAcknowledgedWriteThenRefusesWrites() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "steward-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("steward.sqlite").path
        let store = try SQLiteStore(path: path)
        try await store.migrate()
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: store)], logger: Logger(label: "test")))
        var acknowledged = 0
        var refused = 0
        var attempted = 0
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Writes while the service runs: all applied.
            for index in 0..<100 {
                try await store.write { try await $0.setSetting("before:\(index)", value: "x") }
            }
            // Many writes in flight when the stop comes: each is either acknowledged (and then must be
            // in the file) or refused as unavailable — nothing else.
            // Writes in flight when the stop comes, in waves until the store refuses: each is either
            // acknowledged (and then must be in the file) or refused as unavailable — nothing else.
            var index = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while refused == 0 && ContinuousClock.now < deadline {
                let wave = index..<(index + 200)
                index += 200
                let (applied, turnedAway) = try await withThrowingTaskGroup(of: Bool.self) { writes in
                    for number in wave {
                        writes.addTask {
                            do {
                                try await store.write { try await $0.setSetting("during:\(number)", value: "x") }
                                return true
                            } catch StoreError.unavailable {
                                return false
                            }
                        }
                    }
                    if wave.lowerBound == 1_000 { await group.triggerGracefulShutdown() }
                    var counts = (0, 0)
                    for try await applied in writes {
                        if applied { counts.0 += 1 } else { counts.1 += 1 }
                    }
                    return counts
                }
                acknowledged += applied
                refused += turnedAway
            }
            attempted = index
            try await tasks.waitForAll()
        }
        #expect(acknowledged + refused == attempted)
        #expect(acknowledged >= 1_000)
        #expect(refused > 0, "the store never refused a write after its stop")
        await #expect(throws: StoreError.unavailable("the store is stopping")) {
            try await store.write { try await $0.setSetting("after", value: "x") }
        }
        // Another store on the file sees exactly the acknowledged writes.
        let reopened = try SQLiteStore(path: path)
        let before = try await reopened.read { try await $0.settings(prefix: "before:") }
        let during = try await reopened.read { try await $0.settings(prefix: "during:") }
        #expect(before.count == 100)
        #expect(during.count == acknowledged)
    }
}
