import Foundation
import StewardCore
import StewardPolicy
import Testing

/// Planning (issue 18 item 3) on the shipped map of the example store: every collection the
/// subject's identities reach is located, parents first; erasure acts children first, deletes only
/// rows nothing kept still references, and reports what it keeps and why.
@Suite struct RequestPlanning {
    static let map: DataMap = {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Policies").path
        return try! PolicyLoader.load(directory: directory) { _ in "" }.dataMap
    }()

    func names(_ refs: [CollectionRef]) -> [String] { refs.map(\.description) }

    @Test func locateParentsFirstAlongIdentitiesAndReferences() {
        let plan = Self.map.plan(.access, identities: [.email])
        #expect(
            names(plan.locate.map(\.target)) == [
                "crm.customers", "marketing.subscriptions", "crm.orders", "crm.support_tickets",
                "marketing.email_events", "crm.payments",
            ])
        #expect(plan.locate[0].lookups == [.identity(field: "email", kind: .email)])
        #expect(
            plan.locate.last?.lookups == [
                .reference(
                    field: "order_id", parent: CollectionRef(system: "crm", collection: "orders"), parentField: "id")
            ])
        #expect(plan.unreached.isEmpty)
        // Access reads every located collection, with its mapped fields.
        #expect(plan.effects.count == 6)
        #expect(
            plan.effects.first?.action
                == .read(fields: Self.map.system("crm")!.collection("customers")!.fields.map(\.name)))
        // Known by phone only, the marketing system (keyed by email) is not reached, and says so.
        let byPhone = Self.map.plan(.access, identities: [.phone])
        #expect(
            names(byPhone.locate.map(\.target)) == [
                "crm.customers", "crm.orders", "crm.support_tickets", "crm.payments",
            ])
        #expect(names(byPhone.unreached) == ["marketing.email_events", "marketing.subscriptions"])
        // Types that record a state in Steward touch no customer data.
        for type in [RequestType.restriction, .objection, .optOutSale, .limitSensitive] {
            #expect(Self.map.plan(type, identities: [.email]) == RequestPlan(locate: [], effects: [], unreached: []))
        }
    }

    @Test func erasureActsChildrenFirstAndKeepsWhatTheLawKeeps() throws {
        let plan = Self.map.plan(.erasure, identities: [.email])
        #expect(
            names(plan.effects.map(\.target)) == [
                "crm.payments", "marketing.email_events", "crm.support_tickets", "crm.orders",
                "marketing.subscriptions", "crm.customers",
            ])
        func effect(_ name: String) throws -> RequestPlan.Effect {
            try #require(plan.effects.first { $0.target.description == name })
        }
        #expect(try effect("crm.customers").action == .delete)
        #expect(try effect("crm.support_tickets").action == .delete)
        #expect(try effect("marketing.email_events").action == .delete)
        // Orders are kept for tax law, unlinked from the person and their address removed.
        let orders = try effect("crm.orders")
        #expect(
            orders.action
                == .update([
                    .init(field: "customer_id", strategy: .null), .init(field: "shipping_address", strategy: .null),
                ]))
        #expect(orders.holds.map(\.field) == ["total_cents"])
        #expect(orders.holds.first?.reason.contains("tax law") == true)
        let payments = try effect("crm.payments")
        #expect(
            payments.action
                == .update([.init(field: "card_last4", strategy: .mask), .init(field: "iban", strategy: .mask)]))
        #expect(payments.holds.map(\.field) == ["amount_cents"])
        // The subscription is the address: its email field asks for the row to go, after its events.
        #expect(try effect("marketing.subscriptions").action == .delete)
        // Children before parents: every delete comes after the effects on the rows referencing it.
        for (position, effect) in plan.effects.enumerated() where effect.action == .delete {
            for child in plan.locate
            where child.lookups.contains(where: {
                if case .reference(_, let parent, _) = $0 { return parent == effect.target }
                return false
            }) {
                let childPosition = try #require(plan.effects.firstIndex { $0.target == child.target })
                #expect(childPosition < position, "\(child.target) before \(effect.target)")
            }
        }
    }

    @Test func aRowThatKeptRowsStillReferenceIsChangedNotDeleted() throws {
        // Orders no longer unlink themselves from the customer: deleting the customer would break
        // their reference, so the customer's row stays, its personal fields changed instead.
        var map = Self.map
        let crm = try #require(map.systems.firstIndex { $0.key == "crm" })
        let orders = try #require(map.systems[crm].collections.firstIndex { $0.name == "orders" })
        let link = try #require(map.systems[crm].collections[orders].fields.firstIndex { $0.name == "customer_id" })
        map.systems[crm].collections[orders].fields[link].erasure = nil
        let plan = map.plan(.erasure, identities: [.email])
        let customers = try #require(plan.effects.first { $0.target.description == "crm.customers" })
        #expect(customers.rowKept == "the row is kept: kept rows of crm.orders reference it through customer_id")
        guard case .update(let changes) = customers.action else {
            Issue.record("customers should be updated, not \(customers.action)")
            return
        }
        #expect(changes.contains(.init(field: "email", strategy: .null)))
        #expect(!changes.contains { $0.field == "id" }, "a primary key is never changed in place")
        // Support tickets still go: nothing kept references them.
        #expect(plan.effects.first { $0.target.description == "crm.support_tickets" }?.action == .delete)
    }
}
