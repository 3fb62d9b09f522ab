public import Metrics
public import StewardCore

/// Every use case over one store, built once by the composition root (the CLI, or a test) and
/// handed to the HTTP edge whole. With a metrics factory, each reaches the store through one
/// `MeteredStore` (database errors counted whichever use case meets them) and consent events are
/// counted after each commit.
public struct UseCases: Sendable {
    /// The store every use case here writes through (metered when metrics were given).
    public let store: any StewardStore
    public let consent: ConsentService
    public let subjects: SubjectService
    public let keys: KeyService
    public let audit: AuditLog
    /// Jobs: operators' views and actions; wakes this process's runner (`jobWakeup`).
    public let jobs: JobQueue
    /// Data subject requests; carried out in the customer's systems when `requestExecute` is given
    /// (and delivered to its http systems when `requestDeliver` is).
    public let requests: RequestService
    /// The consent check's resident answer set, when a budget was given; kept current by an
    /// `AnswerFeedFollower` the composition root runs, and by this instance's own writes.
    public let answers: AnswerCache?

    public init(
        store base: any StewardStore, crypto: CryptoSuite, policy: PolicySet, runtime: Runtime,
        metrics: (any MetricsFactory)? = nil, jobWakeup: JobWakeup? = nil, keyCacheLifetime: Double = 5,
        requestExecute: RequestExecution.Execute? = nil, requestDeliver: RequestExecution.Deliver? = nil,
        requestPackageDays: Int = 7, requestWebhooks: Bool = false, answerCacheBytes: Int = 0,
        requestVerificationHours: Int = RequestService.defaultVerificationHours
    ) {
        let store: any StewardStore = metrics.map { MeteredStore(base, factory: $0) } ?? base
        self.store = store
        let answers = AnswerCache(
            budgetBytes: answerCacheBytes,
            purposes: policy.sortedPurposes.filter { $0.mechanism != .noticeOnly }.map(\.key))
        if let answers {
            // This instance's writes are out of its cache before they are acknowledged.
            store.observeAnswerChanges { answers.invalidate($0) }
        }
        self.answers = answers
        let consent = ConsentService(
            store: store, crypto: crypto, policy: policy, runtime: runtime, metrics: metrics, answers: answers)
        self.consent = consent
        self.subjects = SubjectService(store: store, crypto: crypto, runtime: runtime)
        self.keys = KeyService(store: store, crypto: crypto, runtime: runtime, cacheLifetime: keyCacheLifetime)
        self.audit = AuditLog(sealer: crypto.sealer, runtime: runtime)
        let jobs = JobQueue(store: store, runtime: runtime, wakeup: jobWakeup)
        self.jobs = jobs
        self.requests = RequestService(
            store: store, crypto: crypto, runtime: runtime, regimes: policy.regimes,
            execution: requestExecute.map {
                RequestExecution(map: policy.dataMap, queue: jobs, execute: $0, deliver: requestDeliver)
            }, packageDays: requestPackageDays, consent: consent, webhooks: requestWebhooks ? jobs : nil,
            verificationHours: requestVerificationHours)
    }
}
