import ArgumentParser
import Crypto
import Foundation
import StewardCore
import StewardPolicy
import StewardServices

/// `steward report …`: compliance reports generated from the policy.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Compliance reports generated from the policy directory.",
        subcommands: [RoPA.self, Minimisation.self, Requests.self])

    struct RoPA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ropa",
            abstract: "The records of processing activities (GDPR Art. 30) from purposes, systems and taxonomy.",
            discussion: """
                One activity per purpose: its legal basis, data subjects, categories of personal data, systems, \
                recipients, transfers outside the EEA with their safeguards, retention and security measures. \
                The controller and DPO come from organisation.yaml. What Art. 30 asks for and the policy does not \
                declare is listed under gaps (and on standard error); exit status 0 either way, 1 on an invalid \
                policy.
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "json, csv or html.") var format: String = "html"
        @Option(help: "The file to write (default: standard output).") var out: String?

        func validate() throws {
            guard RecordsOfProcessing.Format(rawValue: format) != nil else {
                throw ValidationError("--format must be json, csv or html")
            }
        }

        func run() async throws {
            let directory = common.absolute(common.resolvedPolicies)
            let policy = try PolicyLoader.load(directory: directory) { SHA256.hash(data: $0).hexDigest }
            let records = RecordsOfProcessing(policy: policy)
            let text = records.rendered(RecordsOfProcessing.Format(rawValue: format)!, generatedAt: Date())
            if let out {
                try writeOutput(text, to: common.absolute(out))
            } else {
                print(text, terminator: "")
            }
            for gap in records.gaps { printErr("gap: \(gap)") }
            printErr(
                "records of processing: \(records.activities.count) activities, \(records.systems.count) systems, \(records.gaps.count) gap(s)"
                    + (out.map { "; written to \(common.absolute($0))" } ?? ""))
        }
    }

    struct Minimisation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Personal data kept without a purpose, systems without an owner, unused purposes, "
                + "sensitive fields stored unprotected, transfers without a safeguard.",
            discussion: """
                The same findings as `steward policy check --strict`. Every purpose has a legal basis: the \
                policy does not load without one. Exit status 0 without findings, 2 with findings, 1 on an \
                invalid policy.
                """)
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let directory = common.absolute(common.resolvedPolicies)
            let policy = try PolicyLoader.load(directory: directory) { _ in "" }
            let findings = policy.dataMap.minimisation(purposes: Array(policy.purposes.keys))
            for finding in findings { print(finding.description) }
            guard findings.isEmpty else {
                print("\(findings.count) minimisation finding(s): act on each, or record why it stays")
                throw ExitCode(2)
            }
            print("no minimisation findings")
        }
    }

    struct Requests: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The metrics of one calendar year's data subject requests (CCPA regulations §7102).",
            discussion: """
                Per kind — delete, correct, know (access and portability), opt-out of sale/sharing, limit — the \
                requests received that year (the regime's calendar), those complied with in whole or in part, \
                those denied (by reason), open and cancelled, and the median and mean days to respond. From the \
                stored requests: counts and days, never an identity. §7102 asks a business handling ten million \
                consumers' data to publish these by July 1 for the year before.
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "The calendar year.") var year: Int
        @Option(help: "The regime of requests.yaml.") var regime = "ccpa"
        @Option(help: "json or csv.") var format = "csv"

        func validate() throws {
            guard (2000...2200).contains(year) else { throw ValidationError("--year must be a year, e.g. 2026") }
            guard ["json", "csv"].contains(format) else { throw ValidationError("--format must be json or csv") }
        }

        func run() async throws {
            let (year, regime, format) = (year, regime, format)
            let metrics = try await RequestsCommand.withService(common) {
                try await $0.metrics(regime: regime, year: year)
            }
            if format == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(metrics), as: UTF8.self))
            } else {
                print(metrics.csv, terminator: "")
            }
            let received = metrics.lines.reduce(0) { $0 + $1.received }
            let open = metrics.lines.reduce(0) { $0 + $1.open }
            printErr(
                "\(metrics.regime) requests received in \(metrics.year): \(received); still open: \(open)"
                    + (open > 0 ? " (their days are not in the median and mean yet)" : ""))
        }
    }
}
