public import Hummingbird
public import StewardCore

/// Per-request context: Hummingbird's core storage plus the authenticated principal.
public struct StewardRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the route wrapper after authentication; nil on public routes.
    public var principal: Principal?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.principal = nil
    }

    /// Bodies above this size are refused with 413 (bulk import raises its own limit).
    public var maxUploadSize: Int { 1 << 20 }
}
