public import Foundation
public import StewardCore
import AsyncHTTPClient
import Crypto
import NIOCore
import NIOHTTP1

/// Where an `http` system (a SaaS application of the customer's) takes Steward's requests, and the
/// secret both sides sign with. Built from the system's references, never from a policy file.
public struct HTTPSystemEndpoint: Sendable {
    public var system: String
    public var url: String
    public var secret: Data

    /// Refuses a URL that is not `https` (plain `http` only to this machine: 127.0.0.1, ::1,
    /// localhost), one with a fragment, and a secret under 32 bytes. The refusal names the
    /// system, never the URL or the secret.
    public init(system: String, url: String, secret: Data) throws {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
            let host = parts.host?.lowercased(), !host.isEmpty, parts.fragment == nil
        else {
            throw ConnectorError(
                "system '\(system)': its connection is not an http(s) URL (https://app.example.com/steward)",
                code: .connectorNotConfigured)
        }
        let loopback = ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host)
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw ConnectorError(
                "system '\(system)': its URL must be https (plain http only to this machine): identities travel in the request",
                code: .connectorNotConfigured)
        }
        guard secret.count >= 32 else {
            throw ConnectorError(
                "system '\(system)': its signing secret must be at least 32 bytes (openssl rand -hex 32)",
                code: .connectorNotConfigured)
        }
        self.system = system
        self.url = url
        self.secret = secret
    }

    var unreadable: ConnectorError {
        ConnectorError(
            "system '\(system)' is an http system: Steward delivers requests to it but cannot read its schema or rows",
            code: .connectorUnsupported)
    }
}

/// The signature on every request between Steward and an `http` system, both ways:
/// `Steward-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256 of "<t>.<body>" under the secret>`.
/// The timestamp bounds replay: a signature more than 5 minutes from the receiver's clock is
/// refused. Several `v1=` entries may be sent (a secret being rotated); one match is enough.
public enum RequestSignature {
    public static let header = "Steward-Signature"
    public static let tolerance: TimeInterval = 300

    public static func sign(_ body: Data, secret: Data, at time: Date) -> String {
        let seconds = Int64(time.timeIntervalSince1970.rounded(.down))
        let code = HMAC<SHA256>.authenticationCode(for: signed(body, seconds), using: SymmetricKey(data: secret))
        return "t=\(seconds),v1=" + code.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `header` is a well-formed signature whose time is within the tolerance: checked before
    /// a body is read, so an unsigned or stale callback costs no buffering.
    public static func fresh(_ header: String?, now: Date) -> Bool { parse(header, now: now) != nil }

    /// Whether `header` is a fresh signature of `body` under `secret` (compared in constant time).
    public static func verify(_ header: String?, body: Data, secret: Data, now: Date) -> Bool {
        guard let (seconds, codes) = parse(header, now: now) else { return false }
        let key = SymmetricKey(data: secret)
        let message = signed(body, seconds)
        return codes.contains { HMAC<SHA256>.isValidAuthenticationCode($0, authenticating: message, using: key) }
    }

    /// The time and codes of a well-formed header whose time is within the tolerance.
    static func parse(_ header: String?, now: Date) -> (seconds: Int64, codes: [Data])? {
        guard let header, header.utf8.count <= 1_024 else { return nil }
        var seconds: Int64?
        var codes: [Data] = []
        for part in header.split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return nil }
            switch pair[0] {
            case "t":
                guard seconds == nil, let value = Int64(pair[1]) else { return nil }
                seconds = value
            case "v1":
                guard let code = Data(hex: String(pair[1])), code.count == 32 else { return nil }
                codes.append(code)
            default: continue  // a later scheme's entry
            }
        }
        guard let seconds, !codes.isEmpty, abs(now.timeIntervalSince1970 - Double(seconds)) <= tolerance else {
            return nil
        }
        return (seconds, codes)
    }

    static func signed(_ body: Data, _ seconds: Int64) -> Data { Data("\(seconds).".utf8) + body }
}

extension Data {
    init?(hex: String) {
        guard hex.utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}

/// Delivers a request to an `http` system (ADR 0012): one signed `POST` of what the plan asks in
/// that system, with the subject's identities, and reads its answer — `200` with a report (done),
/// `202` (it will call back). `408`, `429`, `5xx` and transport failures are retried by the job
/// with a backoff; any other status, a redirect, or an answer off the protocol needs attention.
public struct HTTPSystemClient: Sendable {
    /// Redirects are not followed: identities go to the configured host or nowhere.
    static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(30)),
            decompression: .disabled))
    /// The largest answer read (an access report carries the subject's rows).
    public static let answerLimit = 16 << 20

    public let system: DataSystem
    public let map: DataMap
    public let endpoint: HTTPSystemEndpoint
    /// Steward's own address as the system reaches it (`STEWARD_PUBLIC_URL`), for the callback URL.
    public let publicURL: String?

    public init(system: DataSystem, map: DataMap, endpoint: HTTPSystemEndpoint, publicURL: String? = nil) {
        self.system = system
        self.map = map
        self.endpoint = endpoint
        self.publicURL = publicURL
    }

    public static func callbackPath(request: UUID, system: String) -> String {
        "/v1/requests/\(request.lowercasedString)/callbacks/\(system)"
    }

    /// The part of the plan this system carries out.
    func plan(_ delivery: SystemDelivery, identities: SubjectIdentities) -> RequestPlan {
        map.plan(delivery.type, identities: identities.kinds, corrections: delivery.corrections).only(
            system: system.key)
    }

    /// The body of a delivery: the request, what to do per collection, and the identities.
    public func body(_ delivery: SystemDelivery, identities: SubjectIdentities) throws -> Data {
        let plan = plan(delivery, identities: identities)
        var collections: [DeliveryBody.Collection] = []
        for effect in plan.effects {
            var collection = DeliveryBody.Collection(name: effect.target.collection)
            switch effect.action {
            case .read(let fields):
                collection.action = "read"
                collection.fields = Dictionary(uniqueKeysWithValues: fields.map { ($0, "read") })
            case .delete:
                collection.action = "delete_row"
            case .update(let changes):
                collection.action = "update"
                collection.fields = Dictionary(
                    changes.map { ($0.field, $0.strategy.rawValue) }, uniquingKeysWith: { first, _ in first })
            case .correct(let sets):
                collection.action = "correct"
                collection.fields = Dictionary(
                    sets.map { ($0.field, "correct") }, uniquingKeysWith: { first, _ in first })
                collection.values = Dictionary(
                    sets.map { ($0.field, delivery.corrections[$0.correction].value) },
                    uniquingKeysWith: { first, _ in first })
            }
            collection.held =
                effect.holds.isEmpty
                ? nil : Dictionary(effect.holds.map { ($0.field, $0.reason) }, uniquingKeysWith: { first, _ in first })
            collection.rowKept = effect.rowKept
            collections.append(collection)
        }
        let path = Self.callbackPath(request: delivery.request, system: system.key)
        let body = DeliveryBody(
            request: delivery.request.lowercasedString, delivery: delivery.id.lowercasedString,
            type: delivery.type.rawValue, regime: delivery.regime, system: system.key,
            dueAt: Timestamp.iso8601(delivery.dueAt),
            identities: Dictionary(
                identities.values.filter { !$0.value.isEmpty }.map { ($0.key.rawValue, $0.value.sorted()) },
                uniquingKeysWith: { first, _ in first }),
            identitiesSha256: delivery.hashedIdentities.isEmpty
                ? nil
                : Dictionary(grouping: delivery.hashedIdentities, by: \.kind.rawValue).mapValues {
                    $0.map(\.sha256).sorted()
                },
            collections: collections, callbackPath: path,
            callbackUrl: publicURL.map { ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + path })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(body)
    }

    /// One signed `POST` of `body` to `endpoint`: the status and the answer (at most
    /// `answerLimit`). A transport failure is a retryable `ConnectorError` naming the endpoint's
    /// system and the error's type only: a transport error's text can carry the URL.
    static func signedPost(_ body: Data, to endpoint: HTTPSystemEndpoint, idempotencyKey: String) async throws
        -> (status: Int, answer: ByteBuffer)
    {
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: idempotencyKey)
        request.headers.add(
            name: RequestSignature.header, value: RequestSignature.sign(body, secret: endpoint.secret, at: Date()))
        request.headers.add(name: "User-Agent", value: "steward/\(StewardVersion.current)")
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(60))
            return (Int(response.status.code), try await response.body.collect(upTo: answerLimit))
        } catch is NIOTooManyBytesError {
            throw ConnectorError(
                "system '\(endpoint.system)' answered more than \(answerLimit >> 20) MiB", code: .connectorProtocol)
        } catch {
            throw ConnectorError(
                "system '\(endpoint.system)' cannot be reached (\(String(reflecting: type(of: error)))); trying again with a backoff"
            )
        }
    }

    /// Sends one delivery and reads the answer.
    public func deliver(_ delivery: SystemDelivery, identities: SubjectIdentities) async throws -> DeliveryAnswer {
        let (status, answer) = try await Self.signedPost(
            try body(delivery, identities: identities), to: endpoint, idempotencyKey: delivery.id.lowercasedString)
        switch status {
        case 200:
            let report = try Self.report(
                Data(answer.readableBytesView), system: system, plan: plan(delivery, identities: identities),
                type: delivery.type, callback: false, code: .connectorProtocol)
            if let named = report.delivery, named != delivery.id {
                throw ConnectorError(
                    "system '\(system.key)' answered about another delivery (field delivery)", code: .connectorProtocol)
            }
            return .reported(report)
        case 202:
            return .accepted
        case 408, 429, 500...599:
            throw ConnectorError("system '\(system.key)' answered \(status); trying again with a backoff")
        case 300...399:
            throw ConnectorError(
                "system '\(system.key)' answered \(status) (a redirect, not followed: identities go to the configured URL only)",
                code: .connectorRefused)
        case 400...499:
            throw ConnectorError("system '\(system.key)' refused the delivery (\(status))", code: .connectorRefused)
        default:
            throw ConnectorError(
                "system '\(system.key)' answered \(status): expected 200 with a report or 202", code: .connectorProtocol
            )
        }
    }

    struct DeliveryBody: Encodable {
        struct Collection: Encodable {
            var name: String
            /// `read`, `delete_row`, `update` or `correct`.
            var action = "read"
            /// Field → `read`, its erasure strategy (`null`, `mask`, `hash`), or `correct`.
            var fields: [String: String]?
            /// Rectification: field → its corrected value.
            var values: [String: String]?
            var held: [String: String]?
            var rowKept: String?
        }

        var request: String
        var delivery: String
        var type: String
        var regime: String
        var system: String
        var dueAt: String
        var identities: [String: [String]]
        /// Identities given as SHA-256 of the normalised value (hex), by kind.
        var identitiesSha256: [String: [String]]?
        var collections: [Collection]
        var callbackPath: String
        var callbackUrl: String?
    }
}

extension HTTPSystemClient {
    /// Reads a system's report (its `200` answer or its callback's body):
    ///
    ///     {"delivery": "<id>", "status": "completed", "verified": true,
    ///      "collections": [{"name": "tickets", "located": 2, "read": 0, "deleted": 2, "changed": 0}],
    ///      "rows": {"tickets": [{"id": "41", "subject": "…"}]}}
    ///     {"delivery": "<id>", "status": "failed", "reason": "account_locked"}
    ///
    /// Collections must be the system's own; counts are whole numbers; a reason is a short code.
    /// The receipt takes each collection's strategies and holds from the plan. A refusal names
    /// the field, never a value.
    public static func report(
        _ data: Data, system: DataSystem, plan: RequestPlan, type: RequestType, callback: Bool,
        code: StewardError.Code = .requestInvalidValue
    ) throws(StewardError) -> SystemReport {
        func refuse(_ detail: String, _ field: String) -> StewardError {
            StewardError(code, "system '\(system.key)': \(detail)", field: field)
        }
        let body: ReportBody
        do {
            body = try JSONDecoder().decode(ReportBody.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.keyNotFound(_, context)
        {
            throw refuse("does not have the report's type", codingPathText(context.codingPath))
        } catch {
            throw refuse("the report is not a JSON object", "body")
        }
        var delivery: UUID?
        if let text = body.delivery {
            guard let id = UUID(uuidString: text) else { throw refuse("is not a delivery id", "delivery") }
            delivery = id
        } else if callback {
            throw refuse("is required: the id of the delivery the callback is about", "delivery")
        }
        switch body.status {
        case "failed":
            guard let reason = body.reason,
                reason.range(of: "^[a-z0-9][a-z0-9_.-]{0,63}$", options: .regularExpression) != nil
            else {
                throw refuse("a failure needs a reason code (a-z, 0-9, _ . -, at most 64)", "reason")
            }
            return SystemReport(delivery: delivery, outcome: .failed(reason: reason))
        case "completed":
            break
        default:
            throw refuse("must be completed or failed", "status")
        }
        let declared = Set(system.collections.map(\.name))
        guard let listed = body.collections else {
            throw refuse("is required: a list of the collections the work reached", "collections")
        }
        var effects: [String: RequestPlan.Effect] = [:]
        for effect in plan.effects { effects[effect.target.collection] = effect }
        var collections: [SystemReceipt.Collection] = []
        for (index, entry) in listed.enumerated() {
            let field = "collections[\(index)]"
            guard let name = entry.name, declared.contains(name),
                !collections.contains(where: { $0.collection == name })
            else {
                throw refuse("is not a collection of the system's map, or is listed twice", "\(field).name")
            }
            for (key, value) in [
                ("located", entry.located), ("read", entry.read), ("deleted", entry.deleted),
                ("changed", entry.changed),
            ] where !(0...1_000_000_000).contains(value ?? 0) {
                throw refuse("must be a whole number from 0", "\(field).\(key)")
            }
            var collection = SystemReceipt.Collection(collection: name, located: entry.located ?? 0)
            collection.read = entry.read ?? 0
            collection.deleted = entry.deleted ?? 0
            collection.changed = entry.changed ?? 0
            if let effect = effects[name] {
                if collection.changed > 0 {
                    switch effect.action {
                    case .update(let changes):
                        collection.fields = Dictionary(
                            changes.map { ($0.field, $0.strategy.rawValue) }, uniquingKeysWith: { first, _ in first })
                    case .correct(let sets):
                        collection.fields = Dictionary(
                            sets.map { ($0.field, "corrected") }, uniquingKeysWith: { first, _ in first })
                    case .read, .delete: break
                    }
                }
                collection.held = Dictionary(
                    effect.holds.map { ($0.field, $0.reason) }, uniquingKeysWith: { first, _ in first })
                collection.rowKept = effect.rowKept
            }
            collections.append(collection)
        }
        var rows: SubjectRows?
        if let given = body.rows {
            guard type.reads else { throw refuse("rows answer an access or portability request only", "rows") }
            var read = SubjectRows(system: system.key)
            for (name, list) in given {
                guard declared.contains(name) else { throw refuse("is not a collection of the system's map", "rows") }
                var converted: [[String: String?]] = []
                for (index, row) in list.enumerated() {
                    guard row.keys.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 200 }) else {
                        throw refuse("a column name is 1 to 200 bytes", "rows.\(name)[\(index)]")
                    }
                    converted.append(row.mapValues(\.text))
                }
                read.collections[name] = converted
            }
            rows = read
        } else if type.reads {
            rows = SubjectRows(system: system.key)
        }
        return SystemReport(
            delivery: delivery,
            outcome: .completed(
                SystemReceipt(
                    system: system.key, type: type, collections: collections, verified: body.verified ?? false,
                    reportedBy: "system"),
                rows))
    }
}

/// A report's body as the protocol defines it (see `HTTPSystemClient.report`).
struct ReportBody: Decodable {
    struct Count: Decodable {
        var name: String?
        var located: Int?
        var read: Int?
        var deleted: Int?
        var changed: Int?
    }

    /// A row's value: text, a number, true/false or null — kept as text (nil for null).
    struct Scalar: Decodable {
        var text: String?

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                text = nil
            } else if let value = try? container.decode(Bool.self) {
                text = value ? "true" : "false"
            } else if let value = try? container.decode(Int64.self) {
                text = String(value)
            } else if let value = try? container.decode(Double.self) {
                text = String(value)
            } else {
                text = try container.decode(String.self)
            }
        }
    }

    var delivery: String?
    var status: String?
    var verified: Bool?
    var reason: String?
    var collections: [Count]?
    var rows: [String: [[String: Scalar]]]?
}

/// `collections[0].located`: a decoding error's place, as a field name.
func codingPathText(_ keys: [any CodingKey]) -> String {
    var text = ""
    for key in keys {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += (text.isEmpty ? "" : ".") + key.stringValue
        }
    }
    return text.isEmpty ? "body" : text
}

/// Status webhooks (`STEWARD_WEBHOOK_URL`, `STEWARD_WEBHOOK_SECRET`): each notice one signed `POST`,
/// answered by any `2xx`. `408`, `429`, `5xx` and transport failures are retried by the job; any
/// other answer needs attention.
public struct WebhookClient: Sendable {
    public let endpoint: HTTPSystemEndpoint

    public init(url: String, secret: Data) throws {
        endpoint = try HTTPSystemEndpoint(system: "webhook", url: url, secret: secret)
    }

    public func send(_ body: Data, idempotencyKey: String) async throws {
        let (status, _) = try await HTTPSystemClient.signedPost(body, to: endpoint, idempotencyKey: idempotencyKey)
        switch status {
        case 200...299: return
        case 408, 429, 500...599: throw ConnectorError("the webhook answered \(status); trying again with a backoff")
        default: throw ConnectorError("the webhook refused the notice (\(status))", code: .connectorRefused)
        }
    }
}
