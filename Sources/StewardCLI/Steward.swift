import ArgumentParser
import Foundation
import StewardCore

@main
struct Steward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steward",
        abstract: "Privacy and consent governance: the consent ledger, API keys and the audit chain.",
        discussion: """
            Exit status: 0 on success; 1 when a command fails or refuses (its one-line reason is on \
            standard error); 2 when `consent import` finished but rejected lines; 64 for a usage error.
            """,
        version: StewardVersion.current,
        subcommands: [
            Serve.self, Migrate.self, Keys.self, PolicyCommand.self, ConsentCommand.self, AuditCommand.self,
            JobsCommand.self, RequestsCommand.self, MapCommand.self, ClassifyCommand.self, ReportCommand.self,
            DemoCommand.self, Errors.self,
        ])

    /// ArgumentParser's own `main`, except for errors a command raises after parsing: those are
    /// reported with the usage of the command that raised them (not the top-level one), and errors
    /// that are not about usage as one line without any.
    static func main() async {
        // Everything Steward creates — the database, its WAL, key files, rejects and tokens files —
        // holds ciphertext, hashes, proofs or secrets: readable by the service's user only.
        umask(0o077)
        let command: any ParsableCommand
        do {
            command = try await asyncParseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var plain = command
                try plain.run()
            }
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch let error
            where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
            && !(error is ValidationError)
        {
            exit(withError: error)  // help, version and parse errors ArgumentParser raises itself
        } catch let error as ValidationError {
            printErr("Error: \(error.message)")
            printErr("Usage: " + usageString(for: type(of: command)))
            printErr("  See '\(commandPath(type(of: command))) --help' for more information.")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch let error as StewardError {
            printErr("Error: \(error)")  // begins with its code
            Foundation.exit(ExitCode.failure.rawValue)
        } catch let error as any CataloguedError {
            printErr("Error: \(error) [\(error.code)]")
            Foundation.exit(ExitCode.failure.rawValue)
        } catch {
            printErr("Error: \(error)")
            Foundation.exit(ExitCode.failure.rawValue)
        }
    }

    /// `steward consent import`: the names from the root down to `command`.
    static func commandPath(_ command: any ParsableCommand.Type) -> String {
        func path(from type: any ParsableCommand.Type) -> [String]? {
            if type == command { return [type._commandName] }
            for sub in type.configuration.subcommands {
                if let rest = path(from: sub) { return [type._commandName] + rest }
            }
            return nil
        }
        return (path(from: Steward.self) ?? ["steward"]).joined(separator: " ")
    }
}
