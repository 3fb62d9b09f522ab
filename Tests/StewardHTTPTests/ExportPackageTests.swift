import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StewardConnectors
import StewardCore
import StewardExport
import StewardHTTP
import StewardPolicy
import StewardServices
import StewardTesting
import Testing
import ZIPFoundation

/// The export package of an access request (issue 18 item 6), against the example store on the
/// test backend: downloaded over a live server by the caller, opened with ZIPFoundation, held to the
/// rows the store holds; refused to auditors and for erasures; gone, and purged, after its time.
@Suite struct ExportPackages {
    func entries(_ zip: Data) throws -> [String: Data] {
        let archive = try Archive(data: zip, accessMode: .read)
        var files: [String: Data] = [:]
        for entry in archive {
            var data = Data()
            _ = try archive.extract(entry) { data.append($0) }
            files[entry.path] = data
        }
        return files
    }

    @Test func anAccessRequestsPackageHoldsItsRowsUntilItsTimeIsOver() async throws {
        let policy = try PolicyLoader.load(directory: RequestExecution.policies) { _ in "digest" }
        try await RequestExecution.withCustomerStore(customers: 100) { store in
            try await withHarness(policy: policy) { h in
                let queue = JobQueue(store: h.store, runtime: h.runtime)
                let execution = RequestExecution.execution(map: policy.dataMap, store: store, queue: queue)
                let api = h.api(requestExecute: execution.execute)
                let service = api.requests
                let crm = try await RequestExecution.dump(store.connections["crm"]!)
                let marketing = try await RequestExecution.dump(store.connections["marketing"]!)
                let subject = try #require(RequestExecution.subject(crm: crm, marketing: marketing))
                let email = try NormalizedIdentity(kind: .email, raw: subject.email)
                let access = try await service.submit(
                    regime: "gdpr", type: .access, identities: [email], verified: .preVerified, actor: "key:shop")
                _ = try await service.apply(.approve, to: access.id, actor: "officer")
                try await RequestExecution.runJobs(h, service: service)
                #expect(try await service.request(access.id).status == .completed)
                let erasure = try await service.submit(
                    regime: "gdpr", type: .erasure, identities: [email], verified: .preVerified, actor: "key:shop")

                let app = buildApplication(api: api, host: "127.0.0.1", port: 0, logger: testLogger)
                let caller = try await h.key(.service)
                let auditor = try await h.key(.auditor)
                try await app.test(.live) { client in
                    func get(_ path: String, _ key: String) async throws -> TestResponse {
                        try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer \(key)"])
                    }
                    let path = "/v1/requests/\(access.id.lowercasedString)/package"
                    let response = try await get(path, caller)
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "application/zip")
                    #expect(response.headers[.cacheControl] == "no-store")
                    let files = try entries(Data(response.body.readableBytesView))

                    // The manifest counts what the store holds of the subject, per collection.
                    let manifestData = try #require(files["manifest.json"])
                    let manifest = try #require(
                        try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
                    #expect(manifest["format"] as? String == "steward-export/1")
                    #expect((manifest["request"] as? [String: Any])?["id"] as? String == access.id.lowercasedString)
                    let systems = try #require(manifest["systems"] as? [[String: Any]])
                    #expect(systems.map { $0["key"] as? String } == ["crm", "marketing"])
                    for system in systems {
                        for collection in try #require(system["collections"] as? [[String: Any]]) {
                            let name = try #require(collection["name"] as? String)
                            #expect(collection["rows"] as? Int == subject.rows[name]?.count, "\(name)")
                            // One CSV per collection: a header and one line per row.
                            let file = try #require(collection["file"] as? String)
                            let csvData = try #require(files[file])
                            let csv = String(decoding: csvData, as: UTF8.self)
                            let lines = csv.split(separator: "\r\n", omittingEmptySubsequences: true)
                            #expect(lines.count == 1 + (subject.rows[name]?.count ?? 0), "\(name).csv")
                            #expect(lines.first?.hasPrefix("id") == true, "the map's field order: \(lines.first ?? "")")
                        }
                    }
                    // data.json holds the values as stored; the CSV of customers holds the email.
                    let dataFile = try #require(files["data.json"])
                    let data = try #require(try JSONSerialization.jsonObject(with: dataFile) as? [String: Any])
                    let customers = try #require((data["crm"] as? [String: Any])?["customers"] as? [[String: Any]])
                    let id = try #require(subject.rows["customers"]?.first)
                    #expect(customers.first?["email"] as? String == crm["customers"]?[id]?["email"] ?? nil)
                    let customersCSV = try #require(files["crm/customers.csv"])
                    #expect(String(decoding: customersCSV, as: UTF8.self).contains(subject.email))
                    // The Art. 15 information.
                    let readmeData = try #require(files["README.txt"])
                    let readme = String(decoding: readmeData, as: UTF8.self)
                    for expected in [
                        "purposes and legal basis", "recipients", "how long it is kept", "Art. 77", "Example",
                    ] {
                        #expect(readme.contains(expected), "README: \(expected)")
                    }

                    // The person's data is not the auditors'; an erasure has no package; unknown ids are 404.
                    #expect(try await get(path, auditor).status == .forbidden)
                    let erasurePackage = try await get("/v1/requests/\(erasure.id.lowercasedString)/package", caller)
                    #expect(erasurePackage.status == .conflict)
                    #expect(String(buffer: erasurePackage.body).contains("request.package_unavailable"))
                    #expect(try await get("/v1/requests/\(UUID().uuidString)/package", caller).status == .notFound)

                    // A package that cannot be built is not recorded as downloaded (the count of
                    // download entries below stays two).
                    struct Unbuildable: Error {}
                    await #expect(throws: Unbuildable.self) {
                        try await service.package(of: access.id, actor: "test") { _, _ -> Int in throw Unbuildable() }
                    }

                    // A download link for the person: no API key, the same package, nothing else.
                    let made = try await client.execute(
                        uri: path + "/link", method: .post, headers: [.authorization: "Bearer \(caller)"])
                    #expect(made.status == .created)
                    let link = try #require(
                        try JSONSerialization.jsonObject(with: Data(made.body.readableBytesView)) as? [String: Any])
                    let linkPath = try #require(link["path"] as? String)
                    let token = try #require(link["token"] as? String)
                    #expect(linkPath == "/v1/packages/" + token && token.hasPrefix("dl_"))
                    #expect(
                        link["expiresAt"] as? String == Timestamp.iso8601(h.clock.now.addingTimeInterval(7 * 86_400)))
                    let byLink = try await client.execute(uri: linkPath, method: .get)
                    #expect(byLink.status == .ok && byLink.headers[.init("Referrer-Policy")!] == "no-referrer")
                    #expect(try entries(Data(byLink.body.readableBytesView))["data.json"] == dataFile)
                    #expect(
                        try await client.execute(
                            uri: path + "/link", method: .post, headers: [.authorization: "Bearer \(auditor)"]
                        ).status == .forbidden)
                    let erasureLink = try await client.execute(
                        uri: "/v1/requests/\(erasure.id.lowercasedString)/package/link", method: .post,
                        headers: [.authorization: "Bearer \(caller)"])
                    #expect(erasureLink.status == .conflict)
                    for wrong in ["dl_" + String(repeating: "A", count: 43), "dl_short", String(token.dropFirst(3))] {
                        let refused = try await client.execute(uri: "/v1/packages/" + wrong, method: .get)
                        #expect(
                            refused.status == .notFound && String(buffer: refused.body).contains("request.link_unknown")
                        )
                    }

                    // After its time: 410, by the caller and by the link, and the purge deletes its
                    // data, audited, once.
                    h.clock.advance(by: 7 * 86_400 + 1)
                    let gone = try await get(path, caller)
                    #expect(gone.status == .gone && String(buffer: gone.body).contains("request.package_expired"))
                    #expect(try await client.execute(uri: linkPath, method: .get).status == .gone)
                    #expect(try await service.purgeExpiredPackages(actor: "test") == [access.id])
                    #expect(try await service.purgeExpiredPackages(actor: "test") == [])
                    let tasks = try await h.store.read { try await $0.requestTasks(requestID: access.id) }
                    #expect(tasks.count == 2 && tasks.allSatisfy { $0.sealedRows == nil })
                    let audit = try await h.store.read { try await $0.auditEntries(afterSequence: 0, limit: 1_000) }
                    let downloads = audit.filter { $0.draft.action == "request.package_downloaded" }
                    #expect(downloads.count == 2 && downloads.last?.draft.actor.hasPrefix("link:") == true)
                    #expect(audit.contains { $0.draft.action == "request.package_link_created" })
                    #expect(!audit.contains { "\($0.draft)".contains(token) })
                    #expect(
                        audit.contains {
                            $0.draft.action == "request.package_purged"
                                && $0.draft.targetID == access.id.lowercasedString
                        })
                    #expect(!audit.contains { "\($0.draft.details)".contains(subject.email) })
                }
            }
        }
    }
}
