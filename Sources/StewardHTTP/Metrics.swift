import Foundation
import Hummingbird
import Metrics
import Synchronization

/// Request counts and latency per route template (never the concrete path, which may carry ids):
/// `steward_http_requests_total{route,method,status}` and `steward_http_request_duration_seconds`.
/// One per API, shared by the router's middleware and the in-memory check (`CheckFastPath`).
final class RequestMetrics: Sendable {
    let factory: any MetricsFactory
    let counters = Mutex<[String: Counter]>([:])
    let timers = Mutex<[String: Metrics.Timer]>([:])

    init(factory: any MetricsFactory) { self.factory = factory }

    /// One route's count and latency for one status, resolved once by a caller that answers it often.
    struct Handles: Sendable {
        let requests: Counter
        let duration: Metrics.Timer

        func record(since start: ContinuousClock.Instant) {
            requests.increment()
            let elapsed = ContinuousClock.now - start
            duration.recordNanoseconds(
                elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
    }

    func record(method: String, route: String, status: Int, since start: ContinuousClock.Instant) {
        handles(method: method, route: route, status: status).record(since: start)
    }

    func handles(method: String, route: String, status: Int) -> Handles {
        let status = String(status)
        let key = "\(method) \(route) \(status)"
        let counter = counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(
                label: "steward_http_requests_total",
                dimensions: [("route", route), ("method", method), ("status", status)], factory: factory)
            cache[key] = counter
            return counter
        }
        let timerKey = "\(method) \(route)"
        let timer = timers.withLock { cache in
            if let timer = cache[timerKey] { return timer }
            let timer = Metrics.Timer(
                label: "steward_http_request_duration_seconds", dimensions: [("route", route), ("method", method)],
                factory: factory)
            cache[timerKey] = timer
            return timer
        }
        return Handles(requests: counter, duration: timer)
    }
}

/// Records every response the router gives in `RequestMetrics`.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RequestMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.record(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: response.status.code,
            since: start)
        return response
    }
}
