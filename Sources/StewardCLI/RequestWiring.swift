import Foundation
import StewardConnectors
import StewardCore
import StewardServices

/// How this binary carries out data subject requests: the data map's systems, reached through
/// their connection references (`CustomerSystems`) — SQL systems by the `RequestExecutor`, http
/// systems by the `HTTPSystemClient`.
enum RequestWiring {
    static func execute(map: DataMap, systems: CustomerSystems) -> RequestExecution.Execute {
        { system, type, identities, corrections, hash, beforeCommit in
            let declared = try declared(system, in: map)
            let outcome = try await RequestExecutor(
                system: declared, map: map, connection: try systems.connection(declared),
                reach: { key in try systems.connection(try Self.declared(key, in: map)) }
            ).execute(
                type, identities: identities, corrections: corrections, hash: hash, beforeCommit: beforeCommit)
            return (outcome.receipt, outcome.rows)
        }
    }

    /// Deliveries to http systems. Their callback URL is built from `STEWARD_PUBLIC_URL` (Steward's
    /// address as the systems reach it), refused at start when it is not an http(s) URL.
    static func deliver(map: DataMap, systems: CustomerSystems) throws -> RequestExecution.Deliver {
        let publicURL = try Self.publicURL(systems.environment)
        return { system, delivery, identities in
            let declared = try declared(system, in: map)
            guard case .http(let endpoint) = try systems.connection(declared) else {
                throw StewardError(.connectorUnsupported, "system '\(system)' is not an http system", field: "system")
            }
            return try await HTTPSystemClient(system: declared, map: map, endpoint: endpoint, publicURL: publicURL)
                .deliver(delivery, identities: identities)
        }
    }

    static func publicURL(_ environment: [String: String]) throws -> String? {
        guard let text = environment["STEWARD_PUBLIC_URL"], !text.isEmpty else { return nil }
        guard let url = URLComponents(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
            url.host?.isEmpty == false, url.query == nil, url.fragment == nil
        else {
            throw CLIError(
                "STEWARD_PUBLIC_URL must be Steward's address as your systems reach it, e.g. https://steward.example.com"
            )
        }
        return text
    }

    /// `STEWARD_REQUESTS_PACKAGE_DAYS`: how long an export package can be downloaded (1 to 90, default 7).
    static func packageDays(_ environment: [String: String]) throws -> Int {
        guard let text = environment["STEWARD_REQUESTS_PACKAGE_DAYS"] else { return 7 }
        guard let days = Int(text), (1...90).contains(days) else {
            throw CLIError("STEWARD_REQUESTS_PACKAGE_DAYS must be a number of days from 1 to 90")
        }
        return days
    }

    /// `STEWARD_REQUESTS_VERIFICATION_HOURS`: how long a verification token can be used (1 to 720,
    /// default 168: 7 days).
    static func verificationHours(_ environment: [String: String]) throws -> Int {
        guard let text = environment["STEWARD_REQUESTS_VERIFICATION_HOURS"] else {
            return RequestService.defaultVerificationHours
        }
        guard let hours = Int(text), (1...720).contains(hours) else {
            throw CLIError("STEWARD_REQUESTS_VERIFICATION_HOURS must be a number of hours from 1 to 720")
        }
        return hours
    }

    /// Status webhooks: `STEWARD_WEBHOOK_URL` and `STEWARD_WEBHOOK_SECRET` (at least 32 bytes), both
    /// or neither; nil when neither is set.
    static func webhook(_ environment: [String: String]) throws -> WebhookClient? {
        let url = environment["STEWARD_WEBHOOK_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["STEWARD_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        switch (url, secret) {
        case (nil, nil): return nil
        case (let url?, let secret?):
            do {
                return try WebhookClient(url: url, secret: Data(secret.utf8))
            } catch let error as ConnectorError {
                throw CLIError("STEWARD_WEBHOOK_URL / STEWARD_WEBHOOK_SECRET: \(error.description)")
            }
        default:
            throw CLIError(
                "set both STEWARD_WEBHOOK_URL and STEWARD_WEBHOOK_SECRET (the key webhooks are signed with), or neither"
            )
        }
    }

    static func declared(_ system: String, in map: DataMap) throws -> DataSystem {
        guard let declared = map.system(system) else {
            throw StewardError(.systemUnknown, "system '\(system)' is no longer in the data map", field: "system")
        }
        return declared
    }
}

extension JobRunner {
    /// Runs status webhooks only where they are configured: an instance without the URL and
    /// secret leaves them to one that has them, instead of marking them delivered.
    func registering(webhooks client: WebhookClient?) -> JobRunner {
        guard let client else { return self }
        return registering(RequestWebhookJob { body, key in try await client.send(body, idempotencyKey: key) })
    }
}
