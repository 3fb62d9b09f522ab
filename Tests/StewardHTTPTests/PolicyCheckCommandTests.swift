import Foundation
import Testing

/// `steward policy check` (issue 17 item 3) against the built binary: the shipped policy passes with
/// a summary of the data map; a broken one exits 1 with every issue as file:line: key path: reason.
@Suite struct PolicyCheckCommand {
    @Test func theShippedPolicyPassesAndABrokenOneFailsWithEveryIssue() async throws {
        let shipped = try await BuiltBinary.runFully(["policy", "check"])
        #expect(shipped.status == 0, "\(shipped.errors)")
        #expect(shipped.output.contains("2 systems"), "\(shipped.output)")
        #expect(shipped.output.contains("each with an erasure strategy"))
        // --strict: the shipped example keeps IBANs plain and has purposes no system declares.
        let strict = try await BuiltBinary.runFully(["policy", "check", "--strict"])
        #expect(strict.status == 1)
        #expect(strict.errors.contains("4 minimisation finding(s) (--strict)"), "\(strict.errors)")
        #expect(
            strict.output.split(separator: "\n").dropFirst().map { String($0.split(separator: " ").first ?? "") } == [
                "sensitive_field_unprotected", "purpose_unused", "purpose_unused", "purpose_unused",
            ], "\(strict.output)")

        try await BuiltBinary.withDirectory("policy-check") { directory in
            let policies = directory.appendingPathComponent("Policies")
            try FileManager.default.createDirectory(
                at: policies.appendingPathComponent("systems"), withIntermediateDirectories: true)
            let root = BuiltBinary.packageRoot.appendingPathComponent("Policies")
            for name in ["purposes.yaml", "taxonomy.yaml", "systems/marketing.yaml"] {
                try FileManager.default.copyItem(
                    at: root.appendingPathComponent(name), to: policies.appendingPathComponent(name))
            }
            // The CRM with a support-ticket body left without an erasure strategy (user.content.private
            // has no default) and an order linked to a collection that does not exist.
            let crm = try String(contentsOf: root.appendingPathComponent("systems/crm.yaml"), encoding: .utf8)
                .replacingOccurrences(
                    of: "      - name: body\n        category: user.content.private\n        erasure: delete_row\n",
                    with: "      - name: body\n        category: user.content.private\n"
                )
                .replacingOccurrences(of: "references: orders.id", with: "references: order.id")
            try crm.write(to: policies.appendingPathComponent("systems/crm.yaml"), atomically: true, encoding: .utf8)
            let broken = try await BuiltBinary.runFully(["policy", "check", "--policies", policies.path])
            #expect(broken.status == 1)
            let lines = broken.errors.split(separator: "\n").map(String.init)
            #expect(lines.first == "the policy is invalid (2 issues):", "\(broken.errors)")
            let crmPath = policies.appendingPathComponent("systems/crm.yaml").path
            #expect(
                lines.contains {
                    $0.hasPrefix("  \(crmPath):")
                        && $0.hasSuffix(
                            "collections[2].fields[1]: references order.id, which is not declared")
                }, "\(broken.errors)")
            #expect(
                lines.contains {
                    $0.hasPrefix("  \(crmPath):")
                        && $0.contains(
                            "collections[3].fields[3]: personal field has no erasure strategy: its category 'user.content.private' has no default"
                        )
                }, "\(broken.errors)")
        }
    }
}
