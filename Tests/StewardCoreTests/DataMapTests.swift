import Foundation
import StewardCore
import StewardPolicy
import Testing

/// The data map and `steward policy check` (issue 17 items 1–3): the shipped taxonomy and systems
/// load; a broken fixture per error kind fails with its precise file, line, key path and reason.
@Suite struct DataMapValidation {
    static let shippedDirectory = PolicyValidation.shippedDirectory

    static let purposes = """
        version: 1
        purposes:
          - key: analytics
            description: Product analytics.
            legal_basis: legitimate_interests
            mechanism: opt_out
        notices: []
        """

    static let taxonomy = """
        version: 1
        categories:
          - key: system
            description: Operational.
            sensitivity: internal
          - key: system.operations
            description: Ops.
          - key: user
            description: A person.
            sensitivity: personal
          - key: user.contact
            description: Contact.
            erasure: "null"
          - key: user.contact.email
            description: Email.
          - key: user.unique_id
            description: Id.
            erasure: delete_row
          - key: user.content
            description: Content, no default erasure.
        """

    /// A valid system; cases below replace one part of it.
    static let shop = """
        version: 1
        key: shop
        kind: sqlite
        connection:
          env: SHOP_DB
        purposes: [analytics]
        collections:
          - name: customers
            primary_key: id
            fields:
              - name: id
                category: user.unique_id
              - name: email
                category: user.contact.email
                identity: email
          - name: notes
            primary_key: id
            fields:
              - name: id
                category: system.operations
              - name: customer_id
                references: customers.id
              - name: text
                category: user.content
                erasure: delete_row
        """

    /// Loads a policy directory holding the test purposes, `taxonomy` and `systems` (file name →
    /// text); returns the issues as `file:line: keyPath: reason`, file names relative to it.
    static func issues(
        taxonomy: String = taxonomy, systems: [String: String], purposes: String = purposes
    ) throws -> [String] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("datamap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("systems"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try purposes.write(to: directory.appendingPathComponent("purposes.yaml"), atomically: true, encoding: .utf8)
        try taxonomy.write(to: directory.appendingPathComponent("taxonomy.yaml"), atomically: true, encoding: .utf8)
        for (name, text) in systems {
            try text.write(to: directory.appendingPathComponent("systems/\(name)"), atomically: true, encoding: .utf8)
        }
        do {
            _ = try PolicyLoader.load(directory: directory.path) { _ in "" }
            return []
        } catch let error as PolicyError {
            return error.issues.map { $0.description.replacingOccurrences(of: directory.path + "/", with: "") }
        }
    }

    @Test func theShippedPolicyAndItsDataMapAreValid() throws {
        let policy = try PolicyLoader.load(directory: Self.shippedDirectory) { _ in "x" }
        let map = policy.dataMap
        #expect(map.taxonomy["user.contact.email"]?.sensitivity == .personal)
        #expect(map.taxonomy["user.health_and_medical"]?.gdprSpecial == true)
        // Children inherit: the card number is secret, CCPA-sensitive and masked like all payment data.
        #expect(map.taxonomy["user.payment.card_number"]?.ccpaSensitive == true)
        #expect(map.taxonomy["user.payment.card_number"]?.erasure == .mask)
        #expect(map.taxonomy["user.payment.card_number"]?.sensitivity == .secret)
        #expect(Set(map.systems.map(\.key)) == ["crm", "marketing"])
        #expect(
            map.system("crm")?.collection("orders")?.field("customer_id")?.references?.description == "customers.id")
        #expect(try Self.issues(systems: ["shop.yaml": Self.shop]) == [])
    }

    @Test func aDataMapInTheDigest() throws {
        let purposesOnly = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: purposesOnly, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: purposesOnly) }
        try Self.purposes.write(
            to: purposesOnly.appendingPathComponent("purposes.yaml"), atomically: true, encoding: .utf8)
        let digest: (Data) -> String = { "\($0.count)" }
        let alone = try PolicyLoader.load(directory: purposesOnly.path, digest: digest)
        #expect(alone.digest == "\(Self.purposes.utf8.count)", "a policy of purposes.yaml alone keeps its digest")
        try Self.taxonomy.write(
            to: purposesOnly.appendingPathComponent("taxonomy.yaml"), atomically: true, encoding: .utf8)
        #expect(try PolicyLoader.load(directory: purposesOnly.path, digest: digest).digest != alone.digest)
    }

    /// One broken fixture per error kind, each with the exact message `steward policy check` prints.
    @Test func everyErrorKindIsReportedWithFileLineKeyPathAndReason() throws {
        func replacing(_ old: String, _ new: String) -> String {
            precondition(Self.shop.contains(old), old)
            return Self.shop.replacingOccurrences(of: old, with: new)
        }
        let cases: [(String, [String: String], String)] = [
            (
                "unknown category",
                ["shop.yaml": replacing("category: user.contact.email", "category: user.contact.mail")],
                "systems/shop.yaml:13: collections[0].fields[1]: unknown category 'user.contact.mail' (not in taxonomy.yaml)"
            ),
            (
                "unknown purpose",
                ["shop.yaml": replacing("purposes: [analytics]", "purposes: [analytics, telepathy]")],
                "systems/shop.yaml:6: purposes[1]: unknown purpose 'telepathy' (not declared in purposes.yaml)"
            ),
            (
                "dangling reference", ["shop.yaml": replacing("references: customers.id", "references: customer.id")],
                "systems/shop.yaml:21: collections[1].fields[1]: references customer.id, which is not declared"
            ),
            (
                "erasure lint",
                [
                    "shop.yaml": replacing(
                        "category: user.content\n        erasure: delete_row", "category: user.content")
                ],
                "systems/shop.yaml:23: collections[1].fields[2]: personal field has no erasure strategy: its category 'user.content' has no default; set erasure (delete_row, null, mask, hash, or keep with keep_reason)"
            ),
            (
                "keep without a reason", ["shop.yaml": replacing("erasure: delete_row", "erasure: keep")],
                "systems/shop.yaml:25: collections[1].fields[2].keep_reason: erasure keep needs a keep_reason"
            ),
            (
                "no identity reaches",
                ["shop.yaml": replacing("        references: customers.id\n", "        category: system.operations\n")],
                "systems/shop.yaml:16: collections[1]: no identity reaches 'notes', which holds personal data: mark the field that identifies a person (identity:) or reference a collection that has one"
            ),
            (
                "match on a field that is no identity",
                ["shop.yaml": replacing("erasure: delete_row", "erasure: delete_row\n        match: exact")],
                "systems/shop.yaml:26: collections[1].fields[2].match: match applies to identity fields (identity:)"
            ),
            (
                "unknown match",
                ["shop.yaml": replacing("identity: email", "identity: email\n        match: loose")],
                "systems/shop.yaml:16: collections[0].fields[1].match: unknown value 'loose' (expected one of: exact, case-insensitive)"
            ),
            (
                "duplicate field", ["shop.yaml": replacing("- name: email", "- name: id")],
                "systems/shop.yaml:13: collections[0].fields[1].name: duplicate field 'id' in 'customers'"
            ),
            (
                "duplicate collection", ["shop.yaml": replacing("- name: notes", "- name: customers")],
                "systems/shop.yaml:16: collections[1].name: duplicate collection 'customers'"
            ),
            (
                "duplicate system", ["shop.yaml": Self.shop, "shop2.yaml": Self.shop],
                "systems/shop2.yaml:1: key: duplicate system key 'shop' (also in systems/shop.yaml)"
            ),
            (
                "not a SQL name", ["shop.yaml": replacing("- name: notes", "- name: \"notes; DROP TABLE x\"")],
                "systems/shop.yaml:16: collections[1].name: is not a valid SQL name (letters, digits and _, not starting with a digit, at most 63)"
            ),
            (
                "a location that is not a country code",
                ["shop.yaml": replacing("purposes: [analytics]", "purposes: [analytics]\nlocation: Germany")],
                "systems/shop.yaml:7: location: must be an ISO 3166 alpha-2 country code, e.g. DE or US"
            ),
            (
                "an http system without its signing secret", ["shop.yaml": replacing("kind: sqlite", "kind: http")],
                "systems/shop.yaml:1: secret: is required: `env: VARIABLE` or `file: name`"
            ),
            (
                "a signing secret on a SQL system",
                ["shop.yaml": replacing("  env: SHOP_DB\n", "  env: SHOP_DB\nsecret:\n  env: SHOP_SECRET\n")],
                "systems/shop.yaml:7: secret: is for http systems (the key their requests are signed with)"
            ),
            (
                "a callback window on a SQL system",
                ["shop.yaml": replacing("  env: SHOP_DB\n", "  env: SHOP_DB\ncallback_within: 3 days\n")],
                "systems/shop.yaml:6: callback_within: is for http systems (how long they may take to call back)"
            ),
            (
                "a callback window too long",
                [
                    "shop.yaml": replacing(
                        "kind: sqlite", "kind: http\ncallback_within: 91 days\nsecret:\n  env: SHOP_SECRET")
                ],
                "systems/shop.yaml:4: callback_within: expected 1 to 2,160 hours or 1 to 90 days, e.g. '7 days', '48 hours'"
            ),
            (
                "a secret inline", ["shop.yaml": replacing("  env: SHOP_DB", "  url: postgres://u:p@db/shop")],
                "systems/shop.yaml:5: connection.url: unknown key (expected env or file): a connection string, password or secret never goes in a policy file"
            ),
        ]
        for (name, systems, expected) in cases {
            let found = try Self.issues(systems: systems)
            #expect(found == [expected], "\(name): \(found)")
        }
        // A field with nothing to say what it is.
        let unclassified = Self.shop.replacingOccurrences(
            of: "      - name: text\n        category: user.content\n        erasure: delete_row",
            with: "      - name: text")
        #expect(
            try Self.issues(systems: ["shop.yaml": unclassified]) == [
                "systems/shop.yaml:23: collections[1].fields[2].category: has no category: classify it (system.operations for data about no one)"
            ])
    }

    /// `organisation.yaml`: the controller is required; its errors name their line.
    @Test func organisationNeedsAController() throws {
        let file = "organisation.yaml"
        let good = """
            version: 1
            controller:
              name: Shop Ltd
              contact: privacy@shop.example
            country: GB
            security_measures: [Encryption at rest]
            """
        let organisation = try DataMapLoader.parseOrganisation(Data(good.utf8), file: file)
        #expect(organisation.controller.name == "Shop Ltd" && organisation.country == "GB")
        #expect(organisation.securityMeasures == ["Encryption at rest"])
        let broken = """
            version: 1
            dpo:
              name: Someone
            country: gb
            """
        #expect {
            try DataMapLoader.parseOrganisation(Data(broken.utf8), file: file)
        } throws: { error in
            (error as? PolicyError)?.issues.map(\.description) == [
                "organisation.yaml:1: controller: is required: name and contact",
                "organisation.yaml:3: dpo.contact: is required",
                "organisation.yaml:4: country: must be an ISO 3166 alpha-2 country code, e.g. DE",
            ]
        }
    }

    static let cyclicText = """
        version: 1
        key: shop
        kind: postgres
        connection:
          file: shop.url
        collections:
          - name: a
            primary_key: id
            fields:
              - name: id
                category: user.unique_id
                identity: external_id
              - name: b_id
                references: b.id
          - name: b
            primary_key: id
            fields:
              - name: id
                category: system.operations
              - name: a_id
                references: a.id
        """

    @Test func referenceCyclesAreRefusedUnlessALinkIsNulled() throws {
        let cyclic = Self.cyclicText
        #expect(
            try Self.issues(systems: ["shop.yaml": cyclic]) == [
                "systems/shop.yaml:13: collections[0].fields[1]: reference cycle shop.a.b_id → shop.b.a_id → shop.a: erasure cannot delete children before parents; make one of these references erasure null"
            ])
        let cut = cyclic.replacingOccurrences(
            of: "references: b.id", with: "references: b.id\n        erasure: \"null\"")
        #expect(try Self.issues(systems: ["shop.yaml": cut]) == [])
    }

    @Test func taxonomyErrorsNameTheirLine() throws {
        let broken =
            Self.taxonomy + """

                  - key: user.contact.email
                    description: Again.
                  - key: user.health.genome
                    description: An orphan.
                  - key: user.secret_sauce
                    description: Kept.
                    erasure: keep
                """
        #expect(
            try Self.issues(taxonomy: broken, systems: [:]) == [
                "taxonomy.yaml:21: categories[7].key: duplicate category 'user.contact.email'",
                "taxonomy.yaml:23: categories[8].key: its parent category 'user.health' is not declared before it",
                "taxonomy.yaml:27: categories[9].keep_reason: erasure keep needs a keep_reason",
            ])
    }

    /// The minimisation report (`policy check --strict`, issue 17 item 6).
    @Test func minimisationFindsPurposelessOwnerlessUnusedAndUnprotected() throws {
        let purposes = Self.purposes.replacingOccurrences(
            of: "notices: []",
            with: """
                  - key: profiling
                    description: Profiles.
                    legal_basis: consent
                    mechanism: opt_in
                notices: []
                """)
        let taxonomy =
            Self.taxonomy + """

                  - key: user.health
                    description: Health.
                    sensitivity: sensitive
                    erasure: delete_row
                """
        let shop = Self.shop.replacingOccurrences(of: "purposes: [analytics]", with: "owner: shop-team\npurposes: []")
            .replacingOccurrences(
                of: "      - name: text\n",
                with: """
                          - name: allergy
                            category: user.health
                            purposes: [analytics]
                          - name: blood_type
                            category: user.health
                            protection: encrypted
                            purposes: [analytics]
                          - name: text

                    """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("minimise-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("systems"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try purposes.write(to: directory.appendingPathComponent("purposes.yaml"), atomically: true, encoding: .utf8)
        try taxonomy.write(to: directory.appendingPathComponent("taxonomy.yaml"), atomically: true, encoding: .utf8)
        try shop.write(to: directory.appendingPathComponent("systems/shop.yaml"), atomically: true, encoding: .utf8)
        let noOwner = Self.shop.replacingOccurrences(of: "key: shop", with: "key: other")
        try noOwner.write(to: directory.appendingPathComponent("systems/other.yaml"), atomically: true, encoding: .utf8)
        let policy = try PolicyLoader.load(directory: directory.path) { _ in "" }
        #expect(
            policy.dataMap.minimisation(purposes: Array(policy.purposes.keys)).map(\.description) == [
                "system_without_owner  other: no owner: name the team answerable for it (owner:)",
                "personal_field_without_purpose  shop.customers.id: personal data that no purpose uses: give its system or the field purposes, or stop keeping it",
                "personal_field_without_purpose  shop.customers.email: personal data that no purpose uses: give its system or the field purposes, or stop keeping it",
                "sensitive_field_unprotected  shop.notes.allergy: sensitive data (user.health) stored neither encrypted, masked nor tokenized (protection:)",
                "personal_field_without_purpose  shop.notes.text: personal data that no purpose uses: give its system or the field purposes, or stop keeping it",
                "purpose_unused  profiling: no system declares this purpose: is data collected for it anywhere?",
            ])
    }
}
