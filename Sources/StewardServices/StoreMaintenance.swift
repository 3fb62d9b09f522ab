public import Logging
public import ServiceLifecycle

/// Calls `StewardStore.maintain()` once a second until shutdown, then once more. Logs failures
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
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await Task.sleep(for: interval)
            } catch {
                break
            }
            await maintainOnce()
        }
        await maintainOnce()
    }

    func maintainOnce() async {
        do {
            try await store.maintain()
        } catch {
            logger.warning("store maintenance failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
        }
    }
}
