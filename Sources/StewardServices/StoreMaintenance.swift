public import Logging
public import ServiceLifecycle

/// Warms the store once at start (`StewardStore.warm()`, beside everything else), then calls
/// `StewardStore.maintain()` once a second until shutdown, then once more. Logs failures
/// (ids and types only) and keeps going: housekeeping must never take the service down.
public struct StoreMaintenance: Service {
    let store: any StewardStore
    let interval: Duration
    let logger: Logger

    public init(store: any StewardStore, interval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await warmOnce() }
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    // Woken by graceful shutdown too, so SIGTERM does not wait out the interval.
                    let interval = self.interval
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                } catch {
                    break
                }
                await maintainOnce()
            }
            group.cancelAll()
        }
        await maintainOnce()
    }

    /// Warms the consent-check structures once at start, beside the checkpoints; logs how long it took.
    func warmOnce() async {
        let started = ContinuousClock.now
        do {
            guard let rows = try await store.warm() else { return }
            let elapsed = ContinuousClock.now - started
            logger.notice(
                "store warmed: consent-check structures read",
                metadata: [
                    "rows": "\(rows)",
                    "ms": "\(Int(elapsed / .milliseconds(1)))",
                ])
        } catch {
            logger.warning("store warm-up failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
        }
    }

    func maintainOnce() async {
        do {
            try await store.maintain()
        } catch {
            logger.warning(
                "store maintenance failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
        }
    }
}
