/// The retry policy of every use case's write.
extension StewardStore {
    /// Runs a write, retrying when a concurrent writer won a uniqueness race (first sight of a subject)
    /// or the database aborted it to resolve a conflict (a deadlock or serialization failure), after a
    /// short random pause that grows with each attempt so the contenders do not meet again. Anything
    /// else — and a conflict past the last attempt — reaches the caller; nothing is half applied,
    /// since each attempt is one transaction.
    public func writeRetrying<T: Sendable>(
        _ body: @escaping @Sendable (any StoreTransaction) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await write(body)
            } catch StoreError.uniqueViolation where attempt < 3 {
                attempt += 1
            } catch StoreError.conflict where attempt < 5 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 << attempt))))
            }
        }
    }
}
