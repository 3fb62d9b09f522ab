public import Foundation
public import StewardCore

/// What a status webhook says: which request, which step, from and to which status, when. Ids and
/// statuses only — the receiver reads the rest from `GET /v1/requests/{id}`.
public struct RequestStatusNotice: Codable, Sendable, Hashable {
    public var event = "request.status_changed"
    public var request: String
    /// The audited step: `request.received`, `request.verify`, `request.approve`, `request.complete`, …
    public var action: String
    public var from: String?
    public var to: String
    public var at: String
}

/// Delivers one status webhook (issue 18 item 2): the notice, signed like an http system's request
/// (`Steward-Signature`), its job's id as the `Idempotency-Key`. Enqueued in the transaction of the
/// change it reports, so a change is never committed without its webhook nor sent without its
/// change; retried with backoff; a refusal (4xx) needs attention.
public struct RequestWebhookJob: JobHandler {
    public typealias Send = @Sendable (_ body: Data, _ idempotencyKey: String) async throws -> Void

    public struct Payload: Codable, Sendable, Hashable {
        public var notice: RequestStatusNotice
    }

    public struct Cursor: Codable, Sendable {}

    public struct Summary: Codable, Sendable {
        public var delivered: Bool
    }

    public static let kind = "dsr.webhook"
    public static var maxAttempts: Int { 8 }

    let send: Send

    public init(send: @escaping Send) { self.send = send }

    public func run(_ job: JobExecution<Self>) async throws -> Summary {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(job.payload.notice)
        do {
            try await send(body, job.record.id.lowercasedString)
        } catch let error as any CataloguedError & CustomStringConvertible
            where [.connectorRefused, .connectorProtocol].contains(error.code)
        {
            throw JobPermanentFailure(StewardError(error.code, error.description))
        }
        return Summary(delivered: true)
    }
}

extension RequestService {
    /// Appends request audit entries and, when webhooks are configured, enqueues one webhook per
    /// status change among them — in the same transaction.
    func log(_ drafts: [AuditDraft], in transaction: any StoreTransaction) async throws {
        _ = try await audit.append(drafts, in: transaction)
        guard let queue = webhooks else { return }
        let at = Timestamp.iso8601(runtime.now())
        for draft in drafts where draft.targetType == "request" {
            guard let to = draft.details["to"] ?? (draft.action == "request.received" ? draft.details["status"] : nil)
            else { continue }
            let notice = RequestStatusNotice(
                request: draft.targetID, action: draft.action, from: draft.details["from"], to: to, at: at)
            _ = try await transaction.enqueueJob(
                try queue.job(RequestWebhookJob.self, payload: .init(notice: notice), actor: draft.actor))
        }
    }
}
