import StewardConnectors
import StewardCore
import StewardServices

/// How this binary carries out data subject requests: the data map's systems, reached through
/// their connection references (`CustomerSystems`), each by the `RequestExecutor`.
enum RequestWiring {
    static func execute(map: DataMap, systems: CustomerSystems) -> RequestExecution.Execute {
        { system, type, identities, hash, beforeCommit in
            guard let declared = map.system(system) else {
                throw StewardError(.systemUnknown, "system '\(system)' is no longer in the data map", field: "system")
            }
            let outcome = try await RequestExecutor(
                system: declared, map: map, connection: try systems.connection(declared)
            ).execute(type, identities: identities, hash: hash, beforeCommit: beforeCommit)
            return (outcome.receipt, outcome.rows)
        }
    }
}
