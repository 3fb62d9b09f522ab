import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import StewardCore
import StewardInput
import StewardServices
import Prometheus

/// The whole HTTP surface, one row per route. Tests walk this table: every route must be documented
/// in the OpenAPI document and must answer 401 without a key and 403 with a key lacking its permission.
public func endpoints(api: StewardAPI) -> [Endpoint] {
    let consent = api.consent
    let policy = api.policy
    return dataMapEndpoints(api: api) + requestEndpoints(api: api) + [
        // MARK: Public
        Endpoint(.get, "/health", nil) { _, _ in try json(["status": "ok", "version": StewardVersion.current]) },
        Endpoint(.get, "/ready", nil) { _, _ in
            do {
                try await api.store.ping()
                // Where consent checks are answered: "memory" while the change feed is current,
                // "store" while it is not (fail closed: correct, slower), "off" with no answer set.
                let answers = api.answerFeed.map { $0.status.serving ? "memory" : "store" } ?? "off"
                return try json(["status": "ready", "database": api.store.backendName, "answers": answers])
            } catch {
                throw Problem(
                    status: .serviceUnavailable, code: .storeUnavailable, detail: "the database is not reachable")
            }
        },
        Endpoint(.get, "/metrics", nil) { _, _ in
            await api.refreshJobGauges()
            api.refreshAnswerMetrics()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: api.registry.emitToBuffer())))
        },
        Endpoint(.get, "/openapi.json", nil) { [document = ByteBuffer(string: api.openAPIDocument)] _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: document))
        },
        Endpoint(.get, "/.well-known/gpc.json", nil) { _, _ in
            try json(GPCSupport(gpc: true, lastUpdate: "2026-11-23"))
        },

        // MARK: Consent
        Endpoint(.post, "/v1/consents", .consentRecord) { request, context in
            let body = try await decode(RecordConsentBody.self, from: request, limit: 64 << 10)
            let commands = try body.commands(
                actor: context.principal!.actor, defaultMethod: .api, gpc: request.headers[.init("Sec-GPC")!] == "1")
            guard body.isChoices else {
                let outcome = try await consent.record(commands[0])
                return jsonResponse(
                    recordResponse(outcome, policy: policy, now: consent.runtime.now()).jsonText, status: .created)
            }
            let outcomes = try await consent.record(choices: commands)
            return jsonResponse(
                choicesResponse(outcomes, policy: policy, now: consent.runtime.now()).jsonText, status: .created)
        },
        Endpoint(.post, "/v1/consents/bulk", .consentRecord) { request, context in
            try await recordBulk(request, actor: context.principal!.actor, api: api)
        },
        Endpoint(.post, "/v1/consents/confirm", .consentRecord) { request, context in
            let body = try await decode(ConfirmBody.self, from: request, limit: 4 << 10)
            guard let token = body.token, !token.isEmpty else {
                throw StewardError(.confirmationTokenMissing, "is required", field: "token")
            }
            let outcome = try await consent.confirm(token: token, actor: context.principal!.actor)
            return jsonResponse(recordResponse(outcome, policy: policy, now: consent.runtime.now()).jsonText)
        },
        Endpoint(.get, "/v1/consents/check", .consentCheck) { request, _ in
            let query = request.uri.queryParameters  // parsed once: the hot path reads six names
            let reference = try subjectFromQuery(query)
            let purposes = try checkPurposes(query, policy: policy)
            if purposes.count == 1 {
                return checkResponse(try await consent.check(reference, purpose: purposes[0]))
            }
            // Several purposes, or none for every purpose of the policy: one read, one answer.
            return jsonResponse(checkSetText(try await consent.check(reference, purposes: purposes)))
        },
        Endpoint(.post, "/v1/consents/check", .consentCheck) { request, _ in
            let body = try await decode(BatchCheckBody.self, from: request, limit: 512 << 10)
            // The count is the service's to check (check.batch_size); an absent list is an empty one.
            let checks = body.checks ?? []
            var pairs: [(subject: SubjectReference, purpose: String)] = []
            pairs.reserveCapacity(checks.count)
            for (position, check) in checks.enumerated() {
                guard let subject = check.subject else {
                    throw StewardError(.subjectMissing, "is required", field: "checks[\(position)].subject")
                }
                guard let purpose = check.purpose, !purpose.isEmpty else {
                    throw StewardError(.purposeMissing, "is required", field: "checks[\(position)].purpose")
                }
                pairs.append((try subject.reference(field: "checks[\(position)].subject"), purpose))
            }
            var text = "{\"results\":["
            for (position, check) in try await consent.check(pairs: pairs).enumerated() {
                if position > 0 { text += "," }
                text += checkText(check)
            }
            return jsonResponse(text + "]}")
        },
        Endpoint(.get, "/v1/audiences/{purpose}", .consentRead) { request, context in
            let purpose = context.parameters.get("purpose") ?? ""
            let limit = try pageLimit(request, default: 1_000, max: 10_000)
            let after = try idCursor(request)
            let page = try await consent.audience(purpose: purpose, after: after, limit: limit)
            return try json(
                AudiencePage(
                    purpose: purpose, subjects: page.subjects.map(\.lowercasedString),
                    nextCursor: page.next?.lowercasedString))
        },

        // MARK: Subjects
        Endpoint(.get, "/v1/subjects", .consentRead) { request, _ in
            let id = try await consent.subjectID(try subjectFromQuery(request.uri.queryParameters))
            return try json(["subjectId": id.lowercasedString])
        },
        Endpoint(.get, "/v1/subjects/{id}/consents", .consentRead) { _, context in
            let result = try await consent.states(subjectID: try uuidParameter(context))
            return try json(
                SubjectConsents(
                    subjectId: result.subjectID.lowercasedString,
                    consents: result.states.map { StateDTO($0, purpose: policy.purposes[$0.purpose], now: result.now) })
            )
        },
        Endpoint(.get, "/v1/subjects/{id}/consents/history", .consentRead) { request, context in
            let limit = try pageLimit(request)
            let after = try sequenceCursor(request)
            let page = try await consent.history(subjectID: try uuidParameter(context), after: after, limit: limit)
            return try json(HistoryPage(events: page.events.map(EventDTO.init), nextCursor: page.next.map(String.init)))
        },
        Endpoint(.post, "/v1/subjects/{id}/identities", .subjectsManage) { request, context in
            let subjectID = try uuidParameter(context)
            let body = try await decode(LinkIdentityBody.self, from: request, limit: 4 << 10)
            let given = [
                ("email", body.email), ("phone", body.phone), ("externalId", body.externalId),
                ("deviceId", body.deviceId),
            ]
            .compactMap { name, value in value.map { (name, $0) } }
            guard given.count == 1, let (name, value) = given.first else {
                throw StewardError(.identityMissing, "give exactly one of email, phone, externalId or deviceId")
            }
            guard case .identity(let identity) = try parseReference(name: name, value: value, field: name) else {
                throw StewardError(.identityMissing, "give an identity", field: name)
            }
            switch try await api.subjects.link(identity, to: subjectID, actor: context.principal!.actor) {
            case .linked(let identityID):
                return try json(
                    ["subjectId": subjectID.lowercasedString, "identityId": identityID.lowercasedString],
                    status: .created)
            case .alreadyLinked:
                return try json(["subjectId": subjectID.lowercasedString])
            }
        },
        Endpoint(.post, "/v1/subjects/{id}/merge", .subjectsManage) { request, context in
            let target = try uuidParameter(context)
            let body = try await decode(MergeBody.self, from: request, limit: 4 << 10)
            guard let text = body.source, let source = UUID(uuidString: text) else {
                throw StewardError(.subjectInvalidId, "is not a subject id (UUID)", field: "source")
            }
            let outcome = try await api.subjects.merge(source: source, into: target, actor: context.principal!.actor)
            return try json(
                MergeResponse(
                    subjectId: outcome.target.lowercasedString, identitiesMoved: outcome.identitiesMoved,
                    eventsMoved: outcome.eventsMoved))
        },

        // MARK: Policy
        Endpoint(.get, "/v1/purposes", .policyRead) { _, _ in
            try json(["purposes": policy.sortedPurposes.map(PurposeDTO.init)])
        },
        Endpoint(.get, "/v1/notices", .policyRead) { _, _ in
            try json(["notices": policy.sortedNotices.map(NoticeDTO.init)])
        },

        // MARK: Audit
        Endpoint(.get, "/v1/audit", .auditRead) { request, _ in
            let limit = try pageLimit(request)
            let after = try sequenceCursor(request)
            let entries = try await api.store.read { try await $0.auditEntries(afterSequence: after, limit: limit + 1) }
            let page = Array(entries.prefix(limit))
            return try json(
                AuditPage(
                    entries: page.map(AuditEntryDTO.init),
                    nextCursor: entries.count > limit ? page.last.map { String($0.sequence) } : nil))
        },
        Endpoint(.get, "/v1/audit/verify", .auditRead) { _, _ in
            let result = try await api.audit.verify(store: api.store)
            return try json(
                AuditVerifyResponse(
                    intact: result.isIntact, checked: result.checked, firstBroken: result.firstBroken,
                    reason: result.reason))
        },

        // MARK: API keys
        Endpoint(.get, "/v1/keys", .keysManage) { _, _ in
            try json(["keys": try await api.keys.list().map(KeyDTO.init)])
        },
        Endpoint(.post, "/v1/keys", .keysManage) { request, context in
            let body = try await decode(CreateKeyBody.self, from: request, limit: 4 << 10)
            guard let roleText = body.role, let role = Role(rawValue: roleText) else {
                throw StewardError(
                    .keyInvalidRole, "must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))",
                    field: "role")
            }
            let (record, secret) = try await api.keys.create(
                name: body.name ?? "", role: role, actor: context.principal!.actor)
            return try json(CreatedKey(key: KeyDTO(record), secret: secret), status: .created)
        },
        Endpoint(.delete, "/v1/keys/{id}", .keysManage) { _, context in
            let record = try await api.keys.revoke(id: try uuidParameter(context), actor: context.principal!.actor)
            return try json(KeyDTO(record))
        },

        // MARK: Jobs
        Endpoint(.get, "/v1/jobs", .jobsRead) { request, _ in
            let limit = try pageLimit(request, default: 100, max: 1_000)
            var states: Set<JobState> = []
            for text in request.uri.queryParameters.getAll("state") {
                guard let state = JobState(rawValue: String(text)) else {
                    throw StewardError(
                        .jobInvalidState,
                        "must be one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))", field: "state")
                }
                states.insert(state)
            }
            let kind = request.query("kind")
            if let kind {
                try FreeText.check(
                    kind, field: "kind", maxLength: 100, kind: .identifier, lengthCode: .jobInvalidKind)
            }
            let before = try idCursor(request)
            let filter = JobFilter(states: states, kind: kind, before: before, limit: limit + 1)
            let (jobs, counts) = try await api.store.read { reader in
                (try await reader.jobs(filter), try await reader.jobCounts())
            }
            let page = Array(jobs.prefix(limit))
            var byState: [String: Int] = [:]
            for count in counts where kind == nil || count.kind == kind {
                byState[count.state.rawValue, default: 0] += count.count
            }
            return try json(
                JobPage(
                    jobs: page.map(JobDTO.init),
                    nextCursor: jobs.count > limit ? page.last?.id.lowercasedString : nil, counts: byState))
        },
        Endpoint(.get, "/v1/jobs/{id}", .jobsRead) { _, context in
            let id = try uuidParameter(context)
            guard let job = try await api.store.read({ try await $0.job(id: id) }) else {
                throw StewardError(.jobNotFound, "no job has this id")
            }
            return try json(JobDTO(job))
        },
        Endpoint(.post, "/v1/jobs/{id}/cancel", .jobsManage) { _, context in
            let job = try await api.jobs.cancel(
                id: try uuidParameter(context), actor: context.principal!.actor, audit: api.audit)
            return try json(JobDTO(job))
        },
        Endpoint(.post, "/v1/jobs/{id}/retry", .jobsManage) { _, context in
            let job = try await api.jobs.retry(
                id: try uuidParameter(context), actor: context.principal!.actor, audit: api.audit)
            return try json(JobDTO(job))
        },
    ]
}

/// The `cursor` of a page ordered by id (audiences, jobs); nil when absent.
func idCursor(_ request: Request) throws(StewardError) -> UUID? {
    guard let cursor = request.query("cursor") else { return nil }
    guard let id = UUID(uuidString: cursor) else {
        throw StewardError(.requestInvalidCursor, "is not a cursor from a previous page", field: "cursor")
    }
    return id
}

/// The `cursor` of a page ordered by a sequence number (history ordinals, audit sequences); 0 when absent.
func sequenceCursor(_ request: Request) throws(StewardError) -> Int64 {
    guard let cursor = request.query("cursor") else { return 0 }
    guard let value = Int64(cursor), value >= 0 else {
        throw StewardError(.requestInvalidCursor, "is not a cursor from a previous page", field: "cursor")
    }
    return value
}

/// The hot path's response, written key by key (sorted, as JSONEncoder's `.sortedKeys`), without
/// JSONEncoder's reflection. The purpose came in a URL, so it is quoted like any string.
func checkResponse(_ check: ConsentCheck) -> Response { jsonResponse(checkText(check)) }

func checkText(_ check: ConsentCheck) -> String {
    var object = JSONObjectWriter()
    object.bool("allowed", check.allowed)
    object.string("basis", check.basis.rawValue)
    object.date("decidedAt", check.decidedAt)
    object.string("purpose", check.purpose)
    object.string("recordId", check.recordID?.lowercasedString)
    object.string("status", check.status.rawValue)
    return object.finished()
}

/// Several purposes' answers for one subject: `allowed` when every one of them is.
func checkSetText(_ checks: [ConsentCheck]) -> String {
    var text = "{\"allowed\":\(checks.allSatisfy(\.allowed)),\"checks\":["
    for (position, check) in checks.enumerated() {
        if position > 0 { text += "," }
        text += checkText(check)
    }
    return text + "]}"
}

/// The purposes a check's query asks for: one, several (each given, no more than the policy has), or
/// none for every purpose. The route and the in-memory answer (`MemoryCheck`) accept the same ones.
func checkPurposes(_ query: FlatDictionary<Substring, Substring>, policy: PolicySet) throws(StewardError)
    -> [String]
{
    let purposes = query[values: "purpose"]
    if purposes.count == 1 {
        guard !purposes[0].isEmpty else { throw StewardError(.purposeMissing, "is empty", field: "purpose") }
    } else {
        guard purposes.count <= policy.purposes.count, !purposes.contains(where: \.isEmpty) else {
            throw StewardError(
                .purposeMissing, "give each purpose once, at most one per purpose of the policy", field: "purpose")
        }
    }
    return purposes.map(String.init)
}

func subjectFromQuery(_ query: FlatDictionary<Substring, Substring>) throws(StewardError) -> SubjectReference {
    let given = ConsentInput.subjectParameters.compactMap { name in query[name[...]].map { (name, String($0)) } }
    guard given.count == 1, let (name, value) = given.first else {
        throw StewardError(
            given.isEmpty ? .subjectMissing : .subjectAmbiguous,
            "give exactly one of email, phone, externalId, deviceId or subjectId as a query parameter")
    }
    return try parseReference(name: name, value: value, field: name)
}

func recordResponse(_ outcome: ConsentService.RecordOutcome, policy: PolicySet, now: Date) -> RecordResponse {
    RecordResponse(
        subjectId: outcome.subjectID.lowercasedString, subjectCreated: outcome.subjectCreated,
        event: EventDTO(outcome.event),
        state: StateDTO(outcome.state, purpose: policy.purposes[outcome.state.purpose], now: now),
        confirmation: outcome.confirmationToken.map {
            .init(token: $0, expiresAt: outcome.confirmationExpiresAt ?? now)
        },
        gpcOptOuts: outcome.gpcEvents.map(EventDTO.init))
}

func choicesResponse(_ outcomes: [ConsentService.RecordOutcome], policy: PolicySet, now: Date)
    -> RecordChoicesResponse
{
    RecordChoicesResponse(
        subjectId: outcomes[0].subjectID.lowercasedString, subjectCreated: outcomes[0].subjectCreated,
        decisions: outcomes.map { outcome in
            .init(
                event: EventDTO(outcome.event),
                state: StateDTO(outcome.state, purpose: policy.purposes[outcome.state.purpose], now: now),
                confirmation: outcome.confirmationToken.map {
                    .init(token: $0, expiresAt: outcome.confirmationExpiresAt ?? now)
                })
        },
        gpcOptOuts: outcomes.flatMap { $0.gpcEvents.map(EventDTO.init) })
}

struct BatchCheckBody: Decodable {
    struct Pair: Decodable {
        var subject: SubjectBody?
        var purpose: String?
    }
    var checks: [Pair]?
}

struct GPCSupport: Encodable {
    var gpc: Bool
    var lastUpdate: String
}

struct AudiencePage: Encodable {
    var purpose: String
    var subjects: [String]
    var nextCursor: String?
}

struct SubjectConsents: Encodable {
    var subjectId: String
    var consents: [StateDTO]
}

struct HistoryPage: Encodable {
    var events: [EventDTO]
    var nextCursor: String?
}

struct MergeResponse: Encodable {
    var subjectId: String
    var identitiesMoved: Int
    var eventsMoved: Int
}

struct AuditPage: Encodable {
    var entries: [AuditEntryDTO]
    var nextCursor: String?
}

struct AuditVerifyResponse: Encodable {
    var intact: Bool
    var checked: Int
    var firstBroken: Int64?
    var reason: String?
}

struct CreatedKey: Encodable {
    var key: KeyDTO
    var secret: String
}

/// `POST /v1/consents/bulk` in bounded memory: the body (at most `StewardAPI.bulkLimits.maxBytes`)
/// is received whole before anything is written — a client that hangs up halfway records nothing —
/// kept as the pieces it arrived in, then parsed and recorded 1,000 lines at a time, each piece let go
/// once read, so the memory the body held is handed to the writer as it goes rather than added to it.
/// The answer keeps the counts of every rejection by code and the first `rejections` of them (default
/// 100, at most 10,000); `steward consent import --rejects FILE` lists every one. At most
/// `bulkLimits.concurrent` bulk requests run at once; more are answered 503 `bulk.busy`.
func recordBulk(_ request: Request, actor: String, api: StewardAPI) async throws -> Response {
    var shown = 100
    if let text = request.query("rejections") {
        guard let value = Int(text), (0...10_000).contains(value) else {
            throw StewardError(.requestInvalidRejections, "must be an integer from 0 to 10000", field: "rejections")
        }
        shown = value
    }
    let maxBytes = api.bulkLimits.maxBytes
    let tooLarge = Problem(
        status: .contentTooLarge, code: .requestTooLarge,
        detail: "the bulk body is larger than \(maxBytes) bytes (STEWARD_BULK_MAX_BYTES); nothing was recorded")
    if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes { throw tooLarge }
    guard api.bulkSlots.acquire() else {
        var problem = Problem(
            status: .serviceUnavailable, code: .bulkBusy,
            detail: "the server is recording other bulk requests; nothing was recorded, retry")
        problem.headers[.retryAfter] = "2"
        throw problem
    }
    defer { api.bulkSlots.release() }
    var pieces: [ByteBuffer] = []
    var received = 0
    for try await piece in request.body {
        received += piece.readableBytes
        guard received <= maxBytes else { throw tooLarge }
        pieces.append(piece)
    }
    let consent = api.consent
    var reader = ConsentInput.JSONLinesReader(actor: actor)
    var result = BulkResponse(accepted: 0, rejected: [], rejectedCount: 0, rejectedByCode: [:], rejectionsOmitted: 0)
    var sawLine = false
    func record(_ items: [ConsentService.BulkItem]) async throws {
        guard !items.isEmpty else { return }
        sawLine = true
        let outcome = try await consent.recordPrepared(consent.prepareBulk(items))
        result.accepted += outcome.accepted
        result.rejectedCount += outcome.rejected.count
        for rejection in outcome.rejected {
            result.rejectedByCode[rejection.error.code.rawValue, default: 0] += 1
            if result.rejected.count < shown {
                result.rejected.append(
                    .init(
                        line: rejection.line, code: rejection.error.code.rawValue, field: rejection.error.field,
                        detail: rejection.error.detail))
            }
        }
    }
    var items: [ConsentService.BulkItem] = []
    for index in pieces.indices {
        items += reader.feed(pieces[index].readableBytesView)
        pieces[index] = ByteBuffer()  // read: its memory goes back for the batches to use
        while items.count >= 1_000 {
            try await record(Array(items.prefix(1_000)))
            items.removeFirst(1_000)
        }
    }
    items += reader.finish()
    try await record(items)
    guard sawLine else { throw StewardError(.bulkEmpty, "the body holds no JSON lines") }
    result.rejectionsOmitted = result.rejectedCount - result.rejected.count
    return try json(result)
}
