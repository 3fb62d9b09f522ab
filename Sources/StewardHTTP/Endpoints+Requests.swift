import Foundation
import Hummingbird
import StewardCore
import StewardConnectors
import StewardExport
import StewardInput
import StewardServices

/// Data subject requests (issue 18 item 7): intake, the lists officers work from, one request with
/// each system's outcome, and the lifecycle's steps. Bodies and answers hold ids, types, statuses,
/// dates and counts — the person's identities go in once, at intake, and never come back out.
func requestEndpoints(api: StewardAPI) -> [Endpoint] {
    let service = api.requests
    @Sendable func step(_ event: RequestEvent, _ context: StewardRequestContext) async throws -> Response {
        let record = try await service.apply(event, to: try uuidParameter(context), actor: context.principal!.actor)
        return try json(RequestDTO(record, service: service))
    }
    // The export package of an access or portability request: a ZIP built in memory from the
    // sealed rows (nothing of it rests on disk in plaintext), until its time is over.
    @Sendable func packageResponse(_ record: DataSubjectRequestRecord, _ rows: [SubjectRows]) throws -> Response {
        let zip = try ExportPackage.zip(
            request: record, rows: rows, policy: api.policy, generatedAt: service.runtime.now())
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/zip",
                .contentDisposition: "attachment; filename=\"steward-export-\(record.id.lowercasedString).zip\"",
                .cacheControl: "no-store",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: zip)))
    }
    return [
        Endpoint(.post, "/v1/requests", .requestsCreate) { request, context in
            // Room for a rectification's 50 corrections of 4,096 characters.
            let body = try await decode(RequestBody.self, from: request, limit: 1 << 20)
            let input = try body.validated()
            let submission = try await service.receive(
                regime: input.regime, type: input.type, identities: input.identities, verified: input.verified,
                agent: input.agent, corrections: input.corrections, submittedAt: input.submittedAt,
                hashedIdentities: input.hashedIdentities, actor: context.principal!.actor)
            var dto = RequestDTO(submission.record, service: service)
            dto.verificationToken = submission.token.map(TokenDTO.init)
            return try json(dto, status: .created)
        },
        // The person verified: the calling service relays the token it delivered to them.
        Endpoint(.post, "/v1/requests/{id}/confirm", .requestsCreate) { request, context in
            let id = try uuidParameter(context)
            let body = try await decode(TokenBody.self, from: request, limit: 4 << 10)
            guard let token = body.token, !token.isEmpty else {
                throw StewardError(.requestMissingField, "is required", field: "token")
            }
            guard token.utf8.count <= 128,
                token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
            else {
                throw StewardError(.requestInvalidValue, "is not a verification token", field: "token")
            }
            let record = try await service.verify(token: token, request: id, actor: context.principal!.actor)
            return try json(RequestDTO(record, service: service))
        },
        Endpoint(.post, "/v1/requests/{id}/token", .requestsCreate) { _, context in
            let token = try await service.reissueToken(for: try uuidParameter(context), actor: context.principal!.actor)
            return try json(TokenDTO(token), status: .created)
        },
        Endpoint(.get, "/v1/requests", .requestsRead) { request, _ in
            let limit = try pageLimit(request, default: 100, max: 1_000)
            var filter = RequestFilter(limit: limit + 1)
            for text in request.uri.queryParameters.getAll("status") {
                guard let status = RequestStatus(rawValue: String(text)) else {
                    throw StewardError(
                        .requestInvalidValue,
                        "must be one of \(RequestStatus.allCases.map(\.rawValue).joined(separator: ", "))",
                        field: "status")
                }
                filter.statuses.insert(status)
            }
            if let text = request.query("type") {
                guard let type = RequestType(rawValue: text) else {
                    throw StewardError(
                        .requestInvalidValue,
                        "must be one of \(RequestType.allCases.map(\.rawValue).joined(separator: ", "))", field: "type")
                }
                filter.type = type
            }
            if let regime = request.query("regime") {
                guard service.regimes.contains(where: { $0.key == regime }) else {
                    throw StewardError(
                        .requestInvalidValue,
                        "must be one of \(service.regimes.map(\.key).joined(separator: ", "))", field: "regime")
                }
                filter.regime = regime
            }
            if let text = request.query("dueBefore") {
                guard let date = RecordConsentBody.parseTime(text) else {
                    throw StewardError(
                        .requestInvalidValue, "is not an ISO 8601 time (2026-12-31T23:59:59Z)", field: "dueBefore")
                }
                filter.dueBefore = date
            }
            switch request.query("overdue") {
            case nil, "false": break
            case "true":
                // Overdue: open and past the deadline.
                let now = service.runtime.now()
                filter.dueBefore = min(filter.dueBefore ?? now, now)
                if filter.statuses.isEmpty {
                    filter.statuses = Set(RequestStatus.allCases.filter { !$0.isTerminal })
                } else {
                    filter.statuses = filter.statuses.filter { !$0.isTerminal }
                    if filter.statuses.isEmpty {
                        return try json(RequestPage(requests: [], nextCursor: nil))
                    }
                }
            default: throw StewardError(.requestInvalidValue, "must be true or false", field: "overdue")
            }
            filter.after = try idCursor(request)
            let found = try await service.list(filter)
            let page = Array(found.prefix(limit))
            let now = service.runtime.now()
            return try json(
                RequestPage(
                    requests: page.map { RequestDTO($0, service: service, now: now) },
                    nextCursor: found.count > limit ? page.last?.id.lowercasedString : nil))
        },
        Endpoint(.get, "/v1/requests/{id}", .requestsRead) { _, context in
            let id = try uuidParameter(context)
            let record = try await service.request(id)
            var dto = RequestDTO(record, service: service)
            dto.systems = try await service.tasks(of: id).map { try RequestDTO.SystemDTO($0.task, job: $0.job) }
            return try json(dto)
        },
        Endpoint(.get, "/v1/requests/{id}/package", .requestsExport) { _, context in
            try await service.package(
                of: try uuidParameter(context), actor: context.principal!.actor, build: packageResponse)
        },
        // A download link for the person: the caller sends it to them (an email, the account page).
        Endpoint(.post, "/v1/requests/{id}/package/link", .requestsExport) { _, context in
            let id = try uuidParameter(context)
            let link = try await service.packageLink(for: id, actor: context.principal!.actor)
            let path = "/v1/packages/" + link.token
            let base = api.customerSystems.environment["STEWARD_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 }
            return try json(
                PackageLinkDTO(
                    token: link.token, path: path,
                    url: base.map { ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + path },
                    expiresAt: Timestamp.iso8601(link.expiresAt)),
                status: .created)
        },
        // The person's download: authenticated by the link's token alone, not an API key.
        Endpoint(.get, "/v1/packages/{token}", nil) { _, context in
            let token = context.parameters.get("token") ?? ""
            guard token.hasPrefix("dl_"), token.utf8.count == 46 else {
                throw StewardError(.requestLinkUnknown, "no export package has this link", field: "token")
            }
            var response = try await service.package(link: token, build: packageResponse)
            response.headers[.init("Referrer-Policy")!] = "no-referrer"
            return response
        },
        Endpoint(.post, "/v1/requests/{id}/verify", .requestsManage) { request, context in
            let body = try await decode(VerifyBody.self, from: request, limit: 4 << 10)
            guard let text = body.method, let method = VerificationMethod(rawValue: text), method != .notRequired
            else {
                throw StewardError(
                    .requestInvalidValue, "must be one of token, pre_verified, authorized_agent", field: "method")
            }
            return try await step(.verify(method), context)
        },
        Endpoint(.post, "/v1/requests/{id}/approve", .requestsManage) { _, context in
            try await step(.approve, context)
        },
        Endpoint(.post, "/v1/requests/{id}/deny", .requestsManage) { request, context in
            let body = try await decode(DenyBody.self, from: request, limit: 4 << 10)
            guard let text = body.reason, let reason = DenialReason(rawValue: text) else {
                throw StewardError(
                    .requestInvalidValue,
                    "must be one of \(DenialReason.allCases.map(\.rawValue).joined(separator: ", "))", field: "reason")
            }
            return try await step(.deny(reason), context)
        },
        Endpoint(.post, "/v1/requests/{id}/cancel", .requestsManage) { _, context in
            try await step(.cancel, context)
        },
        // An http system's callback: authenticated by that system's signature, not an API key — the
        // secret it shares with Steward authorizes reports about its own deliveries, nothing else.
        Endpoint(.post, "/v1/requests/{id}/callbacks/{system}", nil) { request, context in
            var request = request
            let key = context.parameters.get("system") ?? ""
            let unsigned = StewardError(
                .requestSignatureInvalid, "the callback is not signed by the system's secret",
                field: RequestSignature.header)
            let signature = request.headers[.init(RequestSignature.header)!]
            // Who may call is settled before the body is read: an unknown system, or a missing,
            // malformed or stale signature, costs no buffering of up to 16 MiB.
            guard let system = api.policy.dataMap.system(key), system.kind == .http,
                case .http(let endpoint) = try? api.customerSystems.connection(system),
                RequestSignature.fresh(signature, now: Date())
            else { throw unsigned }
            let body = Data(try await request.collectBody(upTo: HTTPSystemClient.answerLimit).readableBytesView)
            guard RequestSignature.verify(signature, body: body, secret: endpoint.secret, now: Date()) else {
                throw unsigned
            }
            let id = try uuidParameter(context)
            let record = try await service.request(id)
            let report = try HTTPSystemClient.report(
                body, system: system, plan: try await service.plan(of: record, system: key), type: record.type,
                callback: true)
            let outcome = try await service.callback(request: id, system: key, report: report)
            return try json(["status": outcome.rawValue])
        },
        Endpoint(.post, "/v1/requests/{id}/extend", .requestsManage) { request, context in
            let body = try await decode(ExtendBody.self, from: request, limit: 4 << 10)
            let reason = body.reason ?? ""
            try FreeText.check(
                reason, field: "reason", maxLength: 1_000, allowsEmpty: true, lengthCode: .requestInvalidValue)
            let record = try await service.extend(
                try uuidParameter(context), reason: reason, actor: context.principal!.actor)
            return try json(RequestDTO(record, service: service))
        },
    ]
}

struct RequestBody: Decodable {
    var regime: String?
    var type: String?
    var subject: IdentitiesBody?
    /// `pre_verified` (the calling service verified the person) or `authorized_agent`.
    var verified: String?
    /// The authorized agent's name, recorded with the request.
    var agent: String?
    /// A rectification's corrected values: each for a `category` or a `field`.
    var corrections: [CorrectionBody]?
    /// When the person made the request, where that was before it reached Steward (a form, an
    /// agent, a partner's intake: OpenDSR's `submitted_time`); the statutory clock runs from it.
    var submittedAt: String?

    struct CorrectionBody: Decodable {
        var category: String?
        var field: String?
        var value: String?
    }

    struct Input {
        var regime: String
        var type: RequestType
        var identities: [NormalizedIdentity]
        var verified: VerificationMethod?
        var agent: String?
        var corrections: [Correction]
        var submittedAt: Date?
        var hashedIdentities: [HashedIdentity]
    }

    func validated() throws(StewardError) -> Input {
        guard let regime, !regime.isEmpty else {
            throw StewardError(.requestMissingField, "is required", field: "regime")
        }
        guard let typeText = type else { throw StewardError(.requestMissingField, "is required", field: "type") }
        guard let type = RequestType(rawValue: typeText) else {
            throw StewardError(
                .requestInvalidValue, "must be one of \(RequestType.allCases.map(\.rawValue).joined(separator: ", "))",
                field: "type")
        }
        guard let subject else { throw StewardError(.subjectMissing, "is required", field: "subject") }
        let hashed = try subject.hashed(field: "subject")
        let identities = try subject.identities(field: "subject", allowsNone: !hashed.isEmpty)
        var method: VerificationMethod?
        if let verified {
            switch verified {
            case "pre_verified": method = .preVerified
            case "authorized_agent": method = .authorizedAgent
            default:
                throw StewardError(.requestInvalidValue, "must be pre_verified or authorized_agent", field: "verified")
            }
        }
        if let agent {
            try FreeText.check(agent, field: "agent", maxLength: 200, lengthCode: .requestInvalidValue)
        }
        if method == .authorizedAgent && agent == nil {
            throw StewardError(.requestMissingField, "name the authorized agent", field: "agent")
        }
        var corrections: [Correction] = []
        for (index, entry) in (self.corrections ?? []).enumerated() {
            guard let value = entry.value else {
                throw StewardError(.requestMissingField, "is required", field: "corrections[\(index)].value")
            }
            corrections.append(Correction(category: entry.category, field: entry.field, value: value))
        }
        if self.corrections != nil, corrections.isEmpty {
            throw StewardError(
                .requestCorrectionsMissing, "a rectification carries 1 to \(Correction.limit) corrections",
                field: "corrections")
        }
        var submitted: Date?
        if let submittedAt {
            guard let date = RecordConsentBody.parseTime(submittedAt) else {
                throw StewardError(
                    .requestSubmittedAtInvalid, "must be an RFC 3339 time such as 2026-11-30T09:30:00Z",
                    field: "submittedAt")
            }
            submitted = date
        }
        return Input(
            regime: regime, type: type, identities: identities, verified: method, agent: agent,
            corrections: corrections, submittedAt: submitted, hashedIdentities: hashed)
    }
}

/// The person's identities at intake: any of email, phone, externalId, deviceId (at least one).
struct IdentitiesBody: Decodable {
    var email: String?
    var phone: String?
    var externalId: String?
    var deviceId: String?
    /// SHA-256 (hex) of the normalised email (lower-cased) or phone number (E.164).
    var emailSha256: String?
    var phoneSha256: String?

    /// The identities given as SHA-256: 64 hex digits each (compared lower-cased).
    func hashed(field: String) throws(StewardError) -> [HashedIdentity] {
        var hashed: [HashedIdentity] = []
        for (name, kind, value) in [
            ("emailSha256", IdentityKind.email, emailSha256), ("phoneSha256", .phone, phoneSha256),
        ] {
            guard let value else { continue }
            let hex = value.lowercased()
            guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
            else {
                throw StewardError(
                    .requestInvalidValue, "must be the SHA-256 of the normalised value: 64 hex digits",
                    field: "\(field).\(name)")
            }
            hashed.append(HashedIdentity(kind: kind, sha256: hex))
        }
        return hashed
    }

    func identities(field: String, allowsNone: Bool = false) throws(StewardError) -> [NormalizedIdentity] {
        var identities: [NormalizedIdentity] = []
        for (name, value) in [("email", email), ("phone", phone), ("externalId", externalId), ("deviceId", deviceId)] {
            guard let value else { continue }
            guard case .identity(let identity) = try parseReference(name: name, value: value, field: "\(field).\(name)")
            else { continue }
            identities.append(identity)
        }
        guard !identities.isEmpty || allowsNone else {
            throw StewardError(
                .subjectMissing,
                "give at least one of email, phone, externalId or deviceId (or emailSha256, phoneSha256)", field: field)
        }
        return identities
    }
}

struct VerifyBody: Decodable { var method: String? }
struct DenyBody: Decodable { var reason: String? }
struct ExtendBody: Decodable { var reason: String? }

struct RequestPage: Encodable {
    var requests: [RequestDTO]
    var nextCursor: String?
}

struct RequestDTO: Encodable {
    struct SystemDTO: Encodable {
        var system: String
        var state: String
        var job: String
        /// The job's state (`queued`, `running`, `needs_attention`, …) while the task is pending.
        var jobState: String?
        var attempts: Int?
        var lastError: String?
        var receipt: SystemReceipt?

        init(_ task: RequestTaskRecord, job: JobRecord?) throws {
            system = task.system
            // An http system's delivery taken on, its callback not yet come: the job is done, the task not.
            state = task.state == .pending && job?.state == .succeeded ? "awaiting_callback" : task.state.rawValue
            self.job = task.jobID.lowercasedString
            jobState = job?.state.rawValue
            attempts = job?.attempts
            lastError = job?.lastError
            receipt = try task.receipt.map {
                try JSONDecoder().decode(SystemReceipt.self, from: Data($0.utf8))
            }
        }
    }

    var id: String
    var type: String
    var regime: String
    var status: String
    var receivedAt: Date
    var receivedOn: String
    var dueOn: String
    var dueAt: Date
    /// `on_time`, `due_soon` or `overdue` while the request is open.
    var standing: String?
    var acknowledgeBy: Date?
    var extendedOn: String?
    var extensionReason: String?
    var verification: String?
    var denial: String?
    var agent: String?
    var submittedBy: String
    /// When Steward recorded the request (`receivedAt` is when the controller received it).
    var recordedAt: Date
    var updatedAt: Date
    var finishedAt: Date?
    var systems: [SystemDTO]?
    /// At intake of a request that waits for the person to verify: the single-use token to deliver
    /// to them, shown this once.
    var verificationToken: TokenDTO?

    init(_ record: DataSubjectRequestRecord, service: RequestService, now: Date? = nil) {
        id = record.id.lowercasedString
        type = record.type.rawValue
        regime = record.regime
        status = record.status.rawValue
        receivedAt = record.receivedAt
        receivedOn = record.deadlines.receivedOn.description
        dueOn = record.deadlines.dueOn.description
        dueAt = record.deadlines.due
        standing = service.standing(of: record, now: now ?? service.runtime.now())?.rawValue
        acknowledgeBy = record.deadlines.acknowledgeBy
        extendedOn = record.deadlines.extendedOn?.description
        extensionReason = record.deadlines.extensionReason
        verification = record.verification?.rawValue
        denial = record.denial?.rawValue
        agent = record.agent
        submittedBy = record.submittedBy
        recordedAt = record.createdAt
        updatedAt = record.updatedAt
        finishedAt = record.finishedAt
    }
}

struct TokenDTO: Encodable {
    var token: String
    var expiresAt: Date

    init(_ token: RequestService.VerificationToken) {
        self.token = token.token
        expiresAt = token.expiresAt
    }
}

struct TokenBody: Decodable { var token: String? }

struct PackageLinkDTO: Encodable {
    var token: String
    var path: String
    /// With `STEWARD_PUBLIC_URL` set: the whole link to send the person.
    var url: String?
    var expiresAt: String
}
