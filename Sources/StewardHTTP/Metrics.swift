import Foundation
import Hummingbird
import Metrics
import Synchronization

/// Request counts and latency per route template (never the concrete path, which may carry ids).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory
    let handles = HandleCache()

    final class HandleCache: Sendable {
        let counters = Mutex<[String: Counter]>([:])
        let timers = Mutex<[String: Metrics.Timer]>([:])
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        let status = String(response.status.code)
        let key = "\(method) \(route) \(status)"
        let counter = handles.counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(
                label: "steward_http_requests_total",
                dimensions: [("route", route), ("method", method), ("status", status)], factory: factory)
            cache[key] = counter
            return counter
        }
        counter.increment()
        let timerKey = "\(method) \(route)"
        let timer = handles.timers.withLock { cache in
            if let timer = cache[timerKey] { return timer }
            let timer = Metrics.Timer(
                label: "steward_http_request_duration_seconds", dimensions: [("route", route), ("method", method)],
                factory: factory)
            cache[timerKey] = timer
            return timer
        }
        let elapsed = ContinuousClock.now - start
        timer.recordNanoseconds(
            elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        return response
    }
}
