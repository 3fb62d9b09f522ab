import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SQLiteDriver
import StewardConnectors
import StewardCore
import StewardHTTP
import StewardPolicy
import StewardTesting
import Testing

/// The data map's read-only routes (issue 17 item 9) on a real server over the shipped policy and the
/// example store: taxonomy, systems, drift, discovery proposals and the compliance reports.
@Suite struct DataMapRoutes {
    func object(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func readTheMapCompareItAndScan() async throws {
        let policies = BuiltBinary.packageRoot.appendingPathComponent("Policies").path
        let policy = try PolicyLoader.load(directory: policies) { _ in "digest" }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steward-routes-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try ExampleStore.createSQLite(in: directory.path, customers: 500)
        let systems = CustomerSystems(
            policies: policies,
            environment: ["STEWARD_CRM_DATABASE": directory.appendingPathComponent("crm.sqlite").path])
        try await withHarness(policy: policy) { h in
            let app = buildApplication(
                api: h.api(customerSystems: systems), host: "127.0.0.1", port: 0, logger: testLogger)
            let auditor = try await h.key(.auditor)
            let admin = try await h.key(.admin)
            try await app.test(.live) { client in
                func get(_ uri: String, _ key: String) async throws -> TestResponse {
                    try await client.execute(
                        uri: uri, method: .get, headers: [.authorization: "Bearer \(key)"], body: nil)
                }
                let taxonomy = try object(try await get("/v1/datamap/taxonomy", auditor))
                let categories = try #require(taxonomy["categories"] as? [[String: Any]])
                #expect(categories.count == policy.dataMap.taxonomy.order.count)
                let card = categories.first { $0["key"] as? String == "user.payment.card_number" }
                #expect(card?["sensitivity"] as? String == "secret" && card?["ccpaSensitive"] as? Bool == true)

                let list = try object(try await get("/v1/datamap/systems", auditor))
                #expect(
                    (list["systems"] as? [[String: Any]])?.compactMap { $0["key"] as? String } == ["crm", "marketing"])

                let crm = try object(try await get("/v1/datamap/systems/crm", auditor))
                #expect(crm["connection"] as? String == "env", "the reference kind, never its value")
                let customers = (crm["collections"] as? [[String: Any]])?.first { $0["name"] as? String == "customers" }
                let email = (customers?["fields"] as? [[String: Any]])?.first { $0["name"] as? String == "email" }
                #expect(email?["identity"] as? String == "email" && email?["personal"] as? Bool == true)
                #expect(email?["erasure"] != nil && email?["erasureFrom"] as? String == "category")

                let unknown = try await get("/v1/datamap/systems/nosuch", auditor)
                #expect(unknown.status == .notFound)
                #expect(try object(unknown)["code"] as? String == "datamap.system_unknown")

                // Drift: none, then a column added to the live system is named.
                let clean = try object(try await get("/v1/datamap/systems/crm/drift", auditor))
                #expect(clean["matches"] as? Bool == true && clean["tables"] as? Int == 4)
                let connection = try SQLiteConnection(
                    path: directory.appendingPathComponent("crm.sqlite").path, readOnly: false, role: .external)
                try connection.execute(
                    "ALTER TABLE customers ADD COLUMN mobile TEXT; UPDATE customers SET mobile = '+1 202 555 0' || substr('000' || id, -3)"
                )
                let drifted = try object(try await get("/v1/datamap/systems/crm/drift", auditor))
                #expect(drifted["matches"] as? Bool == false)
                let difference = (drifted["differences"] as? [[String: Any]])?.first
                #expect(
                    difference?["kind"] as? String == "undeclared_column"
                        && difference?["column"] as? String == "mobile")

                // The system the environment does not name: a catalogued refusal, not an empty answer.
                let unset = try await get("/v1/datamap/systems/marketing/drift", auditor)
                #expect(unset.status == .unprocessableContent)
                let problem = try object(unset)
                #expect(problem["code"] as? String == "connector.not_configured")
                #expect(
                    (problem["detail"] as? String)?.contains("STEWARD_MARKETING_DATABASE, which is not set") == true)

                // Discovery: admin only; proposes the new column; no sampled value in the answer.
                #expect(try await get("/v1/datamap/systems/crm/proposals", auditor).status == .forbidden)
                let scanned = try await get("/v1/datamap/systems/crm/proposals?sample=200", admin)
                #expect(scanned.status == .ok)
                let body = String(buffer: scanned.body)
                let proposals = try object(scanned)
                let mobile = (proposals["columns"] as? [[String: Any]])?.first { $0["column"] as? String == "mobile" }
                #expect(mobile?["category"] as? String == "user.contact.phone_number")
                #expect(mobile?["status"] as? String == "proposed")
                #expect(proposals["proposed"] as? Int == 1 && proposals["sampleSize"] as? Int == 200)
                #expect(!body.contains("+1 202 555") && !body.contains("@example.com"))
                let badSample = try await get("/v1/datamap/systems/crm/proposals?sample=0", admin)
                #expect(badSample.status == .badRequest)
                #expect(try object(badSample)["field"] as? String == "sample")

                // Reports.
                let ropa = try await get("/v1/reports/ropa?format=html", auditor)
                #expect(ropa.status == .ok && ropa.headers[.contentType] == "text/html; charset=utf-8")
                #expect(String(buffer: ropa.body).contains("<h3 id=\"marketing.email\">"))
                let json = try object(try await get("/v1/reports/ropa", auditor))
                #expect(((json["records"] as? [String: Any])?["activities"] as? [Any])?.count == policy.purposes.count)
                let badFormat = try await get("/v1/reports/ropa?format=pdf", auditor)
                #expect(badFormat.status == .badRequest)
                #expect(try object(badFormat)["code"] as? String == "report.invalid_format")
                let minimisation = try object(try await get("/v1/reports/minimisation", auditor))
                #expect((minimisation["findings"] as? [Any])?.count == 4)
            }
        }
    }
}
