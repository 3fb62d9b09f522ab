import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import FoundationXML
import StewardCore
import StewardPolicy
import Testing

/// `steward report ropa` (issue 17 item 7): the Art. 30 record covers every purpose and every system
/// of the shipped policies, in JSON, CSV and HTML, and the HTML is a well-formed page.
@Suite struct RecordsOfProcessingReport {
    static var policies: String { BuiltBinary.packageRoot.appendingPathComponent("Policies").path }

    @Test func coversEveryPurposeAndSystemInEachFormat() async throws {
        let policy = try PolicyLoader.load(directory: Self.policies) { _ in "" }
        let purposes = Set(policy.purposes.keys)
        let systems = Set(policy.dataMap.systems.map(\.key))
        #expect(purposes.count == 7 && systems == ["crm", "marketing"])
        try await BuiltBinary.withDirectory("ropa") { directory in
            // JSON: one activity per purpose, one entry per system, the controller.
            let json = try await BuiltBinary.runFully(["report", "ropa", "--format", "json"])
            #expect(json.status == 0, "\(json.errors)")
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
            let records = try #require(document["records"] as? [String: Any])
            let activities = try #require(records["activities"] as? [[String: Any]])
            #expect(Set(activities.compactMap { $0["purpose"] as? String }) == purposes)
            #expect(Set((records["systems"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }) == systems)
            #expect((records["controller"] as? [String: Any])?["name"] as? String == "Example Shop GmbH")
            let email = try #require(activities.first { $0["purpose"] as? String == "marketing.email" })
            #expect(email["legal_basis"] as? String == "consent")
            #expect(email["data_subjects"] as? [String] == ["newsletter subscribers"])
            #expect((email["data_categories"] as? [String])?.contains("user.contact.email") == true)
            let transfers = try #require(email["transfers"] as? [[String: Any]])
            #expect(transfers.count == 1 && transfers.first?["country"] as? String == "US")
            #expect((transfers.first?["safeguard"] as? String)?.contains("Data Privacy Framework") == true)
            // Every system that serves a purpose with personal data is named in its activity.
            for system in policy.dataMap.systems {
                for purpose in system.purposes {
                    let activity = activities.first { $0["purpose"] as? String == purpose }
                    #expect(
                        (activity?["systems"] as? [String])?.contains(system.key) == true, "\(purpose) ∌ \(system.key)")
                }
            }
            // Purposes no system serves are gaps, said out loud.
            #expect(json.errors.contains("gap: purpose marketing.sms: no system declares personal data for it"))
            #expect(json.errors.contains("records of processing: 7 activities, 2 systems, 3 gap(s)"), "\(json.errors)")

            // CSV: a header and one row per purpose.
            let csv = try await BuiltBinary.runFully(["report", "ropa", "--format", "csv"])
            let rows = csv.output.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(rows.count == 1 + purposes.count)
            #expect(rows.first?.hasPrefix("purpose,description,legal_basis,") == true)
            #expect(Set(rows.dropFirst().compactMap { $0.split(separator: ",").first.map(String.init) }) == purposes)

            // HTML: well-formed XHTML with a section per purpose and a row per system.
            let file = directory.appendingPathComponent("ropa.html").path
            let html = try await BuiltBinary.runFully(["report", "ropa", "--format", "html", "--out", file])
            #expect(html.status == 0, "\(html.errors)")
            let page = try XMLDocument(contentsOf: URL(fileURLWithPath: file), options: [])
            let headings = try page.nodes(forXPath: "//*[local-name()='h3']").compactMap(\.stringValue)
            #expect(Set(headings) == purposes)
            let text = page.rootElement()?.stringValue ?? ""
            for system in policy.dataMap.systems { #expect(text.contains("\(system.name) (\(system.key))")) }
            #expect(text.contains("Example Shop GmbH") && text.contains("dpo@example.com"))
            #expect(try page.nodes(forXPath: "//*[local-name()='script']").isEmpty)

            // Without organisation.yaml the controller is a gap, not a guess.
            let bare = directory.appendingPathComponent("policies").path
            try FileManager.default.copyItem(atPath: Self.policies, toPath: bare)
            try FileManager.default.removeItem(atPath: "\(bare)/organisation.yaml")
            let missing = try await BuiltBinary.runFully(["report", "ropa", "--format", "json", "--policies", bare])
            #expect(missing.status == 0)
            #expect(missing.errors.contains("gap: no organisation.yaml: the controller's name and contact"))

            // --out into something that is not a regular file (here a FIFO, as /dev/null would be) is
            // written in place: an atomic write would rename a file over it.
            let fifo = directory.appendingPathComponent("pipe").path
            #expect(mkfifo(fifo, 0o600) == 0)
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: "/bin/sh")
            reader.arguments = ["-c", "cat \"$0\" > \"$0.out\"", fifo]
            try reader.run()
            let piped = try await BuiltBinary.runFully(["report", "ropa", "--format", "csv", "--out", fifo])
            reader.waitUntilExit()
            #expect(piped.status == 0, "\(piped.errors)")
            // `test -p`: the C `stat` is declared by several modules linked in, which Swift cannot tell apart.
            let fifoCheck = try Process.run(URL(fileURLWithPath: "/usr/bin/test"), arguments: ["-p", fifo])
            fifoCheck.waitUntilExit()
            #expect(fifoCheck.terminationStatus == 0, "the FIFO is still a FIFO")
            #expect(try String(contentsOfFile: fifo + ".out", encoding: .utf8).hasPrefix("purpose,description,"))

            // The minimisation report: the shipped policy's four findings, exit status 2.
            let minimisation = try await BuiltBinary.runFully(["report", "minimisation"])
            #expect(minimisation.status == 2)
            #expect(minimisation.output.contains("4 minimisation finding(s)"), "\(minimisation.output)")
        }
    }
}
