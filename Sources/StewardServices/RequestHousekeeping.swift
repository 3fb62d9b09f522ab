public import Logging
public import ServiceLifecycle

/// Purges the export packages whose time is over and chases http systems' overdue callbacks, once at
/// start and then every `interval` (`serve`). A failure is logged (its type only) and tried again next time; a download checks the
/// time itself, so a purge that runs late never serves an expired package.
public struct RequestHousekeeping: Service {
    let requests: RequestService
    let interval: Duration
    let logger: Logger

    public init(requests: RequestService, interval: Duration = .seconds(60), logger: Logger) {
        self.requests = requests
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let purged = try await requests.purgeExpiredPackages(actor: "steward")
                if !purged.isEmpty {
                    logger.info("export packages purged", metadata: ["requests": "\(purged.count)"])
                }
            } catch {
                logger.warning(
                    "export package purge failed; trying again", metadata: ["error.type": "\(type(of: error))"])
            }
            do {
                let chased = try await requests.chaseOverdueCallbacks(actor: "steward")
                if !chased.isEmpty {
                    logger.warning(
                        "http systems did not call back in time; their tasks need attention",
                        metadata: ["tasks": "\(chased.count)"])
                }
            } catch {
                logger.warning(
                    "overdue callback check failed; trying again", metadata: ["error.type": "\(type(of: error))"])
            }
            do {
                let interval = self.interval
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}
