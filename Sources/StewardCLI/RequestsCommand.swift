import ArgumentParser
import Foundation
import StewardConnectors
import StewardCore
import StewardInput
import StewardServices

/// `steward requests …`: the privacy officer's desk at the command line — the open requests by
/// deadline, one request with each system's receipt, and the lifecycle's steps. Every step is
/// audited under the operator's name, as over the API.
struct RequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests", abstract: "See data subject requests by deadline and take their steps.",
        subcommands: [
            List.self, Show.self, Verify.self, Approve.self, Deny.self, Extend.self, Cancel.self, Reapply.self,
        ])

    static func parseID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw ValidationError("'\(text)' is not a request id") }
        return id
    }

    static func line(_ request: DataSubjectRequestRecord, standing: DeadlineStanding?) -> String {
        var parts = [
            request.id.lowercasedString, request.regime, request.type.rawValue, request.status.rawValue,
            "due \(request.deadlines.dueOn)",
        ]
        if let standing, standing != .onTime {
            parts.append(standing.rawValue.replacingOccurrences(of: "_", with: " ").uppercased())
        }
        if request.deadlines.extendedOn != nil { parts.append("extended") }
        return parts.joined(separator: "  ")
    }

    /// Runs `body` with the request service over the store, able to start approved requests.
    static func withService<T: Sendable>(
        _ common: CommonOptions, _ body: @escaping @Sendable (RequestService) async throws -> T
    ) async throws -> T {
        let setup = try Wiring.open(common, logger: Wiring.makeLogger(common))
        return try await setup.withStore { wiring in
            let systems = CustomerSystems(policies: common.absolute(common.resolvedPolicies), environment: common.env)
            let services = UseCases(
                store: wiring.store, crypto: wiring.crypto, policy: wiring.policy, runtime: wiring.runtime,
                requestExecute: RequestWiring.execute(map: wiring.policy.dataMap, systems: systems),
                requestDeliver: try RequestWiring.deliver(map: wiring.policy.dataMap, systems: systems),
                requestWebhooks: try RequestWiring.webhook(common.env) != nil)
            return try await body(services.requests)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List requests by deadline, soonest first (open ones unless --status says otherwise).")
        @OptionGroup var common: CommonOptions
        @Option(
            help:
                "Only requests in this status (\(RequestStatus.allCases.map(\.rawValue).joined(separator: ", "))); repeatable."
        )
        var status: [String] = []
        @Option(help: "Only requests of this type.") var type: String?
        @Flag(help: "Only open requests past their deadline.") var overdue = false
        @Option(help: "At most this many lines (1 to 10000).") var limit = 100

        func validate() throws {
            for name in status where RequestStatus(rawValue: name) == nil {
                throw ValidationError(
                    "unknown status '\(name)'; use one of \(RequestStatus.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            if let type, RequestType(rawValue: type) == nil {
                throw ValidationError(
                    "unknown type '\(type)'; use one of \(RequestType.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1 to 10000") }
        }

        func run() async throws {
            let asked = Set(status.compactMap(RequestStatus.init(rawValue:)))
            let statuses = asked.isEmpty ? Set(RequestStatus.allCases.filter { !$0.isTerminal }) : asked
            let type = type.flatMap(RequestType.init(rawValue:))
            let (requests, lines, now) = try await RequestsCommand.withService(common) { service in
                let now = service.runtime.now()
                let filter = RequestFilter(
                    statuses: statuses, type: type, dueBefore: overdue ? now : nil, limit: limit)
                let requests = try await service.list(filter)
                return (
                    requests, requests.map { RequestsCommand.line($0, standing: service.standing(of: $0, now: now)) },
                    now
                )
            }
            for line in lines { print(line) }
            let late = requests.filter { !$0.status.isTerminal && $0.deadlines.due <= now }.count
            print(
                "\(requests.count) request(s)" + (late > 0 ? "; \(late) overdue: act on them first" : "")
                    + (requests.count == limit ? " (more with --limit)" : ""))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one request: its dates, status and each system's task and receipt (counts, never values).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The request id.") var id: String

        func validate() throws { _ = try RequestsCommand.parseID(id) }

        func run() async throws {
            let uuid = try RequestsCommand.parseID(id)
            let (request, tasks, standing) = try await RequestsCommand.withService(common) { service in
                let request = try await service.request(uuid)
                return (
                    request, try await service.tasks(of: uuid),
                    service.standing(of: request, now: service.runtime.now())
                )
            }
            print(RequestsCommand.line(request, standing: standing))
            print(
                "  received \(Timestamp.iso8601(request.receivedAt)) (\(request.deadlines.receivedOn)) by \(request.submittedBy)"
            )
            if let reason = request.deadlines.extensionReason {
                print("  extended on \(request.deadlines.extendedOn?.description ?? "?"): \(reason)")
            }
            if let verification = request.verification { print("  verification: \(verification.rawValue)") }
            if let agent = request.agent { print("  authorized agent: \(agent)") }
            if let denial = request.denial { print("  denied: \(denial.rawValue)") }
            for (task, job) in tasks {
                var line = "  \(task.system): \(task.state.rawValue)"
                if task.state == .pending, let job {
                    line +=
                        " (job \(job.id.lowercasedString) \(job.state.rawValue), attempt \(job.attempts)/\(job.maxAttempts))"
                    if let error = job.lastError { line += "; last error: \(error)" }
                }
                print(line)
                if let text = task.receipt,
                    let receipt = try? JSONDecoder().decode(SystemReceipt.self, from: Data(text.utf8))
                {
                    for collection in receipt.collections {
                        print("    \(collection.collection): \(collection.summary)")
                        for (field, reason) in collection.held.sorted(by: { $0.key < $1.key }) {
                            print("      \(field) kept: \(reason)")
                        }
                        if let kept = collection.rowKept { print("      \(kept)") }
                    }
                    print("    verified: \(receipt.verified ? "yes" : "NO")")
                }
            }
        }
    }

    /// One lifecycle step by the operator, printed as the request's line.
    static func step(_ common: CommonOptions, _ id: String, _ event: RequestEvent) async throws {
        let uuid = try parseID(id)
        let (request, standing) = try await withService(common) { service in
            let request = try await service.apply(event, to: uuid, actor: cliActor)
            return (request, service.standing(of: request, now: service.runtime.now()))
        }
        print(line(request, standing: standing))
        if request.status == .executing {
            print("its systems' tasks are queued: a runner (steward serve or steward jobs work) carries them out")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record that the person's identity was verified.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The request id.") var id: String
        @Option(help: "How: token, pre_verified or authorized_agent.") var method: String

        func validate() throws {
            _ = try RequestsCommand.parseID(id)
            guard let value = VerificationMethod(rawValue: method), value != .notRequired else {
                throw ValidationError("--method must be token, pre_verified or authorized_agent")
            }
        }

        func run() async throws {
            try await RequestsCommand.step(common, id, .verify(VerificationMethod(rawValue: method)!))
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a verified request (or one that needs no verification): its systems' tasks start.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The request id.") var id: String
        func validate() throws { _ = try RequestsCommand.parseID(id) }
        func run() async throws { try await RequestsCommand.step(common, id, .approve) }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a request, with the reason.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The request id.") var id: String
        @Option(help: "\(DenialReason.allCases.map(\.rawValue).joined(separator: ", ")).") var reason: String

        func validate() throws {
            _ = try RequestsCommand.parseID(id)
            guard DenialReason(rawValue: reason) != nil else {
                throw ValidationError(
                    "--reason must be one of \(DenialReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws { try await RequestsCommand.step(common, id, .deny(DenialReason(rawValue: reason)!)) }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a request that has not started.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The request id.") var id: String
        func validate() throws { _ = try RequestsCommand.parseID(id) }
        func run() async throws { try await RequestsCommand.step(common, id, .cancel) }
    }

    struct Extend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extend the deadline once, with the reason the person is told, before it passes.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The request id.") var id: String
        @Option(help: "Why the request needs longer.") var reason: String

        func validate() throws { _ = try RequestsCommand.parseID(id) }

        func run() async throws {
            let uuid = try RequestsCommand.parseID(id)
            let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            try FreeText.check(
                reason, field: "reason", maxLength: 1_000, allowsEmpty: true, lengthCode: .requestInvalidValue)
            let (request, standing) = try await RequestsCommand.withService(common) { service in
                let request = try await service.extend(uuid, reason: reason, actor: cliActor)
                return (request, service.standing(of: request, now: service.runtime.now()))
            }
            print(RequestsCommand.line(request, standing: standing))
        }
    }

    struct Reapply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reapply-erasures",
            abstract: "Erase again, in a system restored from a backup, everyone erased since a date.",
            discussion: """
                Run after restoring a system from a backup taken before some erasures: the people erased \
                since --since (the backup's date, or earlier) are recognised in the restored system by \
                the keyed hashes Steward kept of their identities, and their rows are erased again by \
                the same plan, in one transaction, verified by re-reading. Nothing of theirs is needed \
                in plaintext. Audited as request.erasures_reapplied.
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "The restored system's key (as in Policies/systems).") var system: String
        @Option(help: "Erasures completed since this date (YYYY-MM-DD, or an RFC 3339 time).") var since: String

        func validate() throws {
            guard RecordConsentBody.parseTime(since) != nil else {
                throw ValidationError("--since must be a date (2026-01-31) or an RFC 3339 time")
            }
        }

        func run() async throws {
            let from = RecordConsentBody.parseTime(since)!
            let key = system
            print("==> \(key): looking for people erased since \(Timestamp.iso8601(from))")
            let outcome = try await RequestsCommand.withService(common) { service in
                guard service.execution?.map.system(key) != nil else {
                    throw CLIError("no system '\(key)' in the data map (see `steward map drift`)")
                }
                return try await service.reapplyErasures(system: key, since: from, actor: cliActor)
            }
            guard let receipt = outcome.receipt else {
                print("no erasure was completed since then: nothing to reapply")
                return
            }
            for collection in receipt.collections {
                var parts = ["found again \(collection.located)"]
                if collection.deleted > 0 { parts.append("deleted \(collection.deleted)") }
                if collection.changed > 0 { parts.append("changed \(collection.changed)") }
                print("  \(collection.collection): " + parts.joined(separator: "; "))
            }
            let found = receipt.rowsLocated
            print(
                "\(outcome.identities) identities of \(outcome.erasures) erasure(s) checked in \(key): "
                    + (found == 0
                        ? "none found again; nothing changed"
                        : "\(found) row(s) found again, erased again and verified (request.erasures_reapplied in the audit log)")
            )
        }
    }
}
