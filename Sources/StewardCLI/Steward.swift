import ArgumentParser
import Foundation

@main
struct Steward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steward",
        abstract: "Privacy and consent governance: the consent ledger, API keys and the audit chain.",
        subcommands: [
            Serve.self, Migrate.self, Keys.self, PolicyCommand.self, ConsentCommand.self, AuditCommand.self,
        ])
}
