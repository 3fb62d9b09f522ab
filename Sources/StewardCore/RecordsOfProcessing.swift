/// The record of processing activities (GDPR Art. 30(1)), generated from the policy: one activity
/// per purpose, with the data subjects, categories of personal data, recipients, transfers,
/// retention and security measures of the systems that serve it. What the policy does not say is
/// listed as a gap, never filled in by a guess.
public struct RecordsOfProcessing: Sendable, Hashable, Codable {
    public struct Activity: Sendable, Hashable, Codable {
        public var purpose: String
        public var description: String
        public var legalBasis: String
        /// How consent is given or refused, for purposes on consent or with an opt-out.
        public var mechanism: String
        public var jurisdictions: [String]
        public var dataSubjects: [String]
        /// Category keys of the personal data the purpose uses, most specific first as declared.
        public var dataCategories: [String]
        /// Categories among them that are special (Art. 9), criminal (Art. 10) or CCPA-sensitive.
        public var specialCategories: [String]
        public var systems: [String]
        public var recipients: [String]
        public var transfers: [Transfer]
        public var retention: [String]
        public var securityMeasures: [String]
    }

    public struct Transfer: Sendable, Hashable, Codable {
        public var system: String
        public var country: String
        /// nil: none declared (a gap).
        public var safeguard: String?
    }

    public struct SystemEntry: Sendable, Hashable, Codable {
        public var key: String
        public var name: String
        public var owner: String?
        public var location: String?
        public var processor: String?
        public var purposes: [String]
        public var personalFields: Int
        public var fields: Int
    }

    /// The controller, DPO and representative (Art. 30(1)(a)); nil when `organisation.yaml` is missing.
    public var controller: Organisation.Party?
    public var dpo: Organisation.Party?
    public var representative: Organisation.Party?
    public var activities: [Activity]
    public var systems: [SystemEntry]
    /// What the policy leaves out that Art. 30 asks for.
    public var gaps: [String]
    /// The policy digest the record was generated from.
    public var policyDigest: String

    public init(policy: PolicySet) {
        let map = policy.dataMap
        let organisation = map.organisation
        controller = organisation?.controller
        dpo = organisation?.dpo
        representative = organisation?.representative
        policyDigest = policy.digest
        var gaps: [String] = []
        if organisation == nil {
            gaps.append("no organisation.yaml: the controller's name and contact (Art. 30(1)(a)) are not declared")
        } else if organisation?.dpo == nil {
            gaps.append("no data protection officer declared (organisation.yaml dpo:), where Art. 37 requires one")
        }
        let organisationMeasures = organisation?.securityMeasures ?? []
        var activities: [Activity] = []
        for purpose in policy.purposes.values.sorted(by: { $0.key < $1.key }) {
            var subjects: [String] = []
            var categories: [String] = []
            var systems: [String] = []
            var recipients: [String] = []
            var transfers: [Transfer] = []
            var retention: [String] = []
            var protected: [String] = []
            for system in map.systems.sorted(by: { $0.key < $1.key }) {
                let fields = system.collections.flatMap { collection in
                    collection.fields.filter { ($0.purposes ?? system.purposes).contains(purpose.key) }.map {
                        (collection.name, $0)
                    }
                }
                let personal = fields.filter { map.isPersonal($0.1) }
                guard !personal.isEmpty else { continue }
                systems.append(system.key)
                for subject in system.processing.dataSubjects where !subjects.contains(subject) {
                    subjects.append(subject)
                }
                for (_, field) in personal {
                    if let category = field.category, !categories.contains(category) { categories.append(category) }
                }
                if let processor = system.processing.processor {
                    recipients.append("\(processor) — processor operating \(system.name)")
                }
                for recipient in system.processing.recipients where !recipients.contains(recipient) {
                    recipients.append(recipient)
                }
                if system.processing.isTransfer, let country = system.processing.location {
                    transfers.append(
                        Transfer(system: system.key, country: country, safeguard: system.processing.transferSafeguard))
                }
                retention.append("\(system.name): \(system.processing.retention ?? "not declared")")
                for (collection, field) in personal {
                    if let protection = field.protection {
                        protected.append("\(system.key).\(collection).\(field.name) \(protection.rawValue)")
                    }
                }
            }
            if purpose.saleOrSharing {
                recipients.append("third parties the personal information is sold or shared with (CCPA)")
            }
            if let validity = purpose.validity {
                retention.append("consent: renewed or lapsed after \(validity)")
            }
            var measures = organisationMeasures
            if !protected.isEmpty { measures.append("Fields protected at rest: " + protected.joined(separator: ", ")) }
            let special = categories.filter { key in
                guard let category = map.taxonomy[key] else { return false }
                return category.gdprSpecial || category.gdprCriminal || category.ccpaSensitive
            }
            if systems.isEmpty {
                gaps.append("purpose \(purpose.key): no system declares personal data for it")
            } else if subjects.isEmpty {
                gaps.append("purpose \(purpose.key): no system names its data subjects (data_subjects:)")
            }
            for transfer in transfers where transfer.safeguard == nil {
                gaps.append(
                    "system \(transfer.system): stored in \(transfer.country), outside the EEA, with no transfer safeguard declared"
                )
            }
            activities.append(
                Activity(
                    purpose: purpose.key, description: purpose.description, legalBasis: purpose.legalBasis.rawValue,
                    mechanism: purpose.mechanism.rawValue, jurisdictions: purpose.jurisdictions,
                    dataSubjects: subjects, dataCategories: categories, specialCategories: special,
                    systems: systems, recipients: recipients, transfers: transfers, retention: retention,
                    securityMeasures: measures))
        }
        for system in map.systems.sorted(by: { $0.key < $1.key }) where system.processing.retention == nil {
            gaps.append("system \(system.key): no retention declared (retention:), Art. 30(1)(f)")
        }
        var seen: Set<String> = []
        self.gaps = gaps.filter { seen.insert($0).inserted }
        self.activities = activities
        self.systems = map.systems.sorted(by: { $0.key < $1.key }).map { system in
            let fields = system.collections.flatMap(\.fields)
            return SystemEntry(
                key: system.key, name: system.name, owner: system.owner, location: system.processing.location,
                processor: system.processing.processor, purposes: system.purposes,
                personalFields: fields.filter(map.isPersonal).count, fields: fields.count)
        }
    }
}
