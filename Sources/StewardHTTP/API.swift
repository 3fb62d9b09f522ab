import Foundation
public import HTTPTypes
public import Hummingbird
import HummingbirdCore
public import Logging
import Metrics
import NIOCore
import Synchronization
public import Prometheus
public import StewardConnectors
public import StewardCore
import StewardInput
public import StewardServices
public import ServiceLifecycle

/// Everything the HTTP edge calls into. Built by the composition root (the CLI) or by tests.
public struct StewardAPI: Sendable {
    public var consent: ConsentService
    public var subjects: SubjectService
    public var keys: KeyService
    public var store: any StewardStore
    public var audit: AuditLog
    /// Jobs: operators' views and actions; wakes this process's runner (`jobWakeup`).
    public var jobs: JobQueue
    public var requests: RequestService
    public var registry: PrometheusCollectorRegistry
    public var bulkLimits: BulkLimits
    let bulkSlots: Slots
    let jobKindsSeen = JobKindsSeen()
    /// The OpenAPI document for the loaded policy (`OpenAPIRendering`), served at /openapi.json.
    public let openAPIDocument: String
    /// How drift and discovery reach the customer's systems.
    public var customerSystems: CustomerSystems
    /// What keeps the consent check's resident answer set current, for `/ready` and `/metrics`.
    public var answerFeed: AnswerFeedFollower?
    let answerCounts = AnswerCounts()
    /// Request counts and latencies, by route (the router's and the in-memory check's).
    let requestMetrics: RequestMetrics

    /// Takes its use cases built (`UseCases`, by the composition root), metered on `registry` — the
    /// registry `/metrics` serves.
    public init(
        services: UseCases, registry: PrometheusCollectorRegistry, bulkLimits: BulkLimits = BulkLimits(),
        customerSystems: CustomerSystems = CustomerSystems(policies: "Policies", environment: [:]),
        answerFeed: AnswerFeedFollower? = nil
    ) {
        self.answerFeed = answerFeed
        self.customerSystems = customerSystems
        self.bulkLimits = bulkLimits
        self.bulkSlots = Slots(bulkLimits.concurrent)
        self.consent = services.consent
        self.subjects = services.subjects
        self.keys = services.keys
        self.store = services.store
        self.audit = services.audit
        self.jobs = services.jobs
        self.requests = services.requests
        self.registry = registry
        self.requestMetrics = RequestMetrics(factory: PrometheusMetricsFactory(registry: registry))
        self.openAPIDocument = OpenAPIRendering.document(policy: services.consent.policy)
    }

    var policy: PolicySet { consent.policy }

    /// Sets `steward_jobs{kind,state}` from the store before a scrape: every state of every kind seen
    /// since start, 0 where there is none, so a queue that drains reads 0 rather than its last value.
    /// A store that does not answer leaves the last values (and `/ready` says why). `/metrics` is
    /// public, so the count is read at most once a second however often it is scraped.
    func refreshJobGauges() async {
        let now = ContinuousClock.now
        let due = jobKindsSeen.lastRead.withLock { last -> Bool in
            if let last, now - last < .seconds(1) { return false }
            last = now
            return true
        }
        guard due, let counts = try? await store.read({ try await $0.jobCounts() }) else { return }
        let kinds = jobKindsSeen.value.withLock { seen in
            seen.formUnion(counts.map(\.kind))
            return seen
        }
        var byKey: [String: Int] = [:]
        for count in counts { byKey["\(count.kind)\u{0}\(count.state.rawValue)"] = count.count }
        for kind in kinds {
            for state in JobState.allCases {
                Gauge(
                    label: "steward_jobs", dimensions: [("kind", kind), ("state", state.rawValue)],
                    factory: metricsFactory
                ).record(byKey["\(kind)\u{0}\(state.rawValue)"] ?? 0)
            }
        }
    }
    var metricsFactory: PrometheusMetricsFactory { PrometheusMetricsFactory(registry: registry) }

    /// Sets the resident answer set's figures before a scrape: hits, misses, evictions and
    /// invalidations as counters (the change since the last scrape), entries, bytes, whether it
    /// answers and the change feed's lag as gauges.
    func refreshAnswerMetrics() {
        guard let answerFeed else { return }
        let cache = answerFeed.cache
        let counters = cache.counters
        let status = answerFeed.status
        let delta = answerCounts.last.withLock { last -> AnswerCache.Counters in
            defer { last = counters }
            return AnswerCache.Counters(
                hits: counters.hits - last.hits, misses: counters.misses - last.misses,
                evictions: counters.evictions - last.evictions,
                invalidations: counters.invalidations - last.invalidations)
        }
        for (name, value) in [
            ("steward_answer_cache_hits_total", delta.hits), ("steward_answer_cache_misses_total", delta.misses),
            ("steward_answer_cache_evictions_total", delta.evictions),
            ("steward_answer_cache_invalidations_total", delta.invalidations),
        ] {
            Counter(label: name, factory: metricsFactory).increment(by: max(0, value))
        }
        Gauge(label: "steward_answer_cache_entries", factory: metricsFactory).record(counters.entries)
        Gauge(label: "steward_answer_cache_bytes", factory: metricsFactory).record(cache.allocatedBytes)
        Gauge(label: "steward_answer_cache_serving", factory: metricsFactory).record(status.serving ? 1 : 0)
        Gauge(label: "steward_answer_feed_lag_seconds", factory: metricsFactory).record(
            status.lag.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? -1)
    }
}

/// The resident answer set's counters at the last scrape.
final class AnswerCounts: Sendable {
    let last = Mutex(AnswerCache.Counters())
}

/// The job kinds `/metrics` has reported, so their gauges go to 0 rather than vanish.
final class JobKindsSeen: Sendable {
    let value = Mutex<Set<String>>([])
    /// When the job counts were last read for a scrape.
    let lastRead = Mutex<ContinuousClock.Instant?>(nil)
}

/// One route: method, OpenAPI-style path, the permission it declares (nil: public), and its handler.
public struct Endpoint: Sendable {
    public typealias Handler = @Sendable (Request, StewardRequestContext) async throws -> Response
    public var method: HTTPRequest.Method
    /// Path in OpenAPI form: `/v1/subjects/{id}/consents`.
    public var path: String
    public var permission: Permission?
    let handler: Handler

    init(_ method: HTTPRequest.Method, _ path: String, _ permission: Permission?, _ handler: @escaping Handler) {
        self.method = method
        self.path = path
        self.permission = permission
        self.handler = handler
    }

    /// Hummingbird's form of the path: `{id}` → `:id`.
    var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : String(part)
        }.joined(separator: "/")
    }
}

let jsonEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(Timestamp.iso8601(date))
    }
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try jsonEncoder.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// A response whose JSON body was written by hand (the hot and record paths).
func jsonResponse(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Decodes a JSON body, mapping decoding failures to 400 with the field path (never the value).
func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
    var request = request
    let buffer = try await request.collectBody(upTo: limit)
    do {
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    } catch let error as DecodingError {
        throw decodingProblem(error)
    }
}

extension Request {
    func query(_ name: String) -> String? { uri.queryParameters[name[...]].map(String.init) }
}

func pageLimit(_ request: Request, default value: Int = 100, max: Int = 1_000) throws(StewardError) -> Int {
    guard let text = request.query("limit") else { return value }
    guard let limit = Int(text), (1...max).contains(limit) else {
        throw StewardError(.requestInvalidLimit, "must be an integer from 1 to \(max)", field: "limit")
    }
    return limit
}

func uuidParameter(_ context: StewardRequestContext, _ name: String = "id") throws(StewardError) -> UUID {
    guard let text = context.parameters.get(name), let id = UUID(uuidString: text) else {
        throw StewardError(.requestInvalidId, "is not a valid id (UUID)", field: name)
    }
    return id
}

/// Builds the router: the endpoint table, with authentication and permission checks wrapped around
/// every non-public route, problem+json errors and request metrics.
public func buildRouter(api: StewardAPI) -> Router<StewardRequestContext> {
    let router = Router(context: StewardRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware<StewardRequestContext>(metrics: api.requestMetrics))
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: MethodNotAllowedMiddleware(endpoints: endpoints(api: api)))
    for endpoint in endpoints(api: api) {
        router.on(RouterPath(endpoint.routerPath), method: endpoint.method) { request, context in
            var context = context
            if let permission = endpoint.permission {
                context.principal = try await authorize(request, permission: permission, keys: api.keys)
            }
            var response = try await endpoint.handler(request, context)
            response.headers[requestIDField] = context.id
            return response
        }
    }
    return router
}

/// The response header naming the request (its id is in the server's log lines).
let requestIDField = HTTPField.Name("X-Request-Id")!

/// Deny by default: a missing, malformed, unknown or revoked key is 401; a key whose role lacks the
/// route's permission is 403.
func authorize(_ request: Request, permission: Permission, keys: KeyService) async throws -> Principal {
    // Built only when refused: every authenticated request passes here.
    func unauthenticated() -> Problem {
        var problem = Problem(
            status: .unauthorized, code: .authUnauthenticated,
            detail: "a valid API key is required (Authorization: Bearer stw_…)")
        problem.headers[.wwwAuthenticate] = "Bearer realm=\"steward\""
        return problem
    }
    guard let header = request.headers[.authorization], let secret = bearerToken(in: header) else {
        throw unauthenticated()
    }
    guard let principal = try await keys.authenticate(secret: String(secret)) else { throw unauthenticated() }
    guard principal.role.allows(permission) else {
        throw Problem(
            status: .forbidden, code: .authForbidden,
            detail: "role \(principal.role.rawValue) lacks permission \(permission.rawValue)")
    }
    return principal
}

/// The `Server` header's value.
let serverName = "steward"

/// Builds the application that serves the API: consent checks the resident answer set holds are
/// answered on the event loop (`CheckFastPath`), everything else by the router.
public func buildApplication(
    api: StewardAPI, host: String, port: Int, limits: HTTPLimits = HTTPLimits(), services: [any Service] = [],
    logger: Logger
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(api: api),
        server: limits.server(
            fastPath: api.consent.answers.map { _ in
                MemoryCheck(
                    consent: api.consent, keys: api.keys,
                    inline: Counter(label: "steward_consent_checks_inline_total", factory: api.metricsFactory),
                    answered: api.requestMetrics.handles(method: "GET", route: MemoryCheck.route, status: 200),
                    serverName: serverName)
            }),
        configuration: .init(
            address: .hostname(host, port: port), serverName: serverName, backlog: limits.backlog,
            availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections, logger: logger)),
        services: services, logger: logger)
}

/// The token of an `Authorization: Bearer <token>` header, or nil when the header is anything else.
/// Strict, one pass over the bytes: the scheme in any case (RFC 9110 §11.1), one space, then one
/// token68 (RFC 6750 §2.1: letters, digits, `-._~+/`, then `=` padding only) and nothing after it.
/// Two spaces or trailing words are refused rather than guessed at.
public func bearerToken(in header: String) -> Substring? {
    let utf8 = header.utf8
    var index = utf8.startIndex
    for expected in "bearer ".utf8 {
        guard index != utf8.endIndex else { return nil }
        let byte = utf8[index]
        guard (expected == 0x20 ? byte : byte | 0x20) == expected else { return nil }
        index = utf8.index(after: index)
    }
    let start = index
    var padding = false
    while index != utf8.endIndex {
        let byte = utf8[index]
        switch byte {
        case UInt8(ascii: "="): padding = true
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            if padding { return nil }
        default: return nil
        }
        index = utf8.index(after: index)
    }
    guard start != utf8.endIndex, utf8[start] != UInt8(ascii: "=") else { return nil }
    return header[start..<index]
}

/// A known path asked with a method it does not take — any method, `TRACE` and `QUERY` included —
/// answers 405 with `Allow` (RFC 9110 §15.5.6), before any authentication, rather than a 404 that
/// says the path does not exist.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Each route template's segments (`nil` for a `{parameter}`) and the methods it takes.
    let routes: [(segments: [Substring?], methods: Set<HTTPRequest.Method>, allow: String)]

    init(endpoints: [Endpoint]) {
        routes = Dictionary(grouping: endpoints, by: \.path).map { path, endpoints in
            let segments: [Substring?] = path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }
            return (
                segments, Set(endpoints.map(\.method)),
                endpoints.map(\.method.rawValue).sorted().joined(separator: ", ")
            )
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError where error.status == .notFound {
            let parts = request.uri.path.split(separator: "/")
            guard
                let route = routes.first(where: { route in
                    route.segments.count == parts.count
                        && zip(route.segments, parts).allSatisfy { template, part in template.map { $0 == part } ?? true
                        }
                }),
                // A 404 from a route that takes this method is that route's own answer (an unknown id).
                !route.methods.contains(request.method)
            else { throw error }
            var problem = Problem(
                status: .methodNotAllowed, code: .routeMethodNotAllowed,
                detail: "\(request.method.rawValue) is not allowed here; allowed: \(route.allow)")
            problem.headers[.allow] = route.allow
            throw problem
        }
    }
}
