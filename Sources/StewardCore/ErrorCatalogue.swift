/// The closed catalogue of error codes (the shape of postgres-nio's `PSQLError.Code`): every code a
/// client, an operator or a log can see is declared here once, with the kind that sets its HTTP
/// status and a one-line meaning. A code cannot be made anywhere else (the initializer is private),
/// and a code never changes once shipped: clients branch on it. `steward errors` prints this
/// catalogue; `Docs/Errors.md` is its output (a test keeps it so).
extension StewardError {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The stable dotted code, e.g. `identity.invalid_email`.
        public let rawValue: String
        /// The broad kind, which sets the HTTP status.
        public let kind: Kind
        /// What the code means, for the catalogue.
        public let summary: String

        private init(_ rawValue: String, _ kind: Kind, _ summary: String) {
            self.rawValue = rawValue
            self.kind = kind
            self.summary = summary
        }

        public var description: String { rawValue }

        public static func == (lhs: Code, rhs: Code) -> Bool { lhs.rawValue == rhs.rawValue }
        public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

        public static let authUnauthenticated = Code(
            "auth.unauthenticated", .unauthorized,
            "No valid API key: the `Authorization: Bearer stw_…` header is missing, malformed, unknown or revoked.")
        public static let authForbidden = Code(
            "auth.forbidden", .forbidden, "The key's role lacks the permission the route needs.")
        public static let routeNotFound = Code("route.not_found", .notFound, "No route has this path.")
        public static let routeMethodNotAllowed = Code(
            "route.method_not_allowed", .methodNotAllowed,
            "The path exists but does not take this method; `Allow` lists the ones it takes.")
        public static let requestAborted = Code(
            "request.aborted", .clientClosedRequest,
            "The client closed the connection before its request was read (counted as 499, never answered).")
        public static let requestRejected = Code(
            "request.rejected", .invalidInput,
            "The HTTP layer refused the request before it reached a route (the status says why).")
        public static let requestMalformedJson = Code(
            "request.malformed_json", .invalidInput, "The body (or a JSON line) is not valid JSON.")
        public static let requestMissingField = Code(
            "request.missing_field", .invalidInput, "A required field is absent.")
        public static let requestMissingValue = Code(
            "request.missing_value", .invalidInput, "A field is null where a value is required.")
        public static let requestWrongType = Code(
            "request.wrong_type", .invalidInput, "A field has the wrong JSON type.")
        public static let requestInvalidValue = Code(
            "request.invalid_value", .invalidInput, "A field's value cannot be decoded.")
        public static let requestInvalidId = Code(
            "request.invalid_id", .invalidInput, "A path or query id is not a UUID.")
        public static let requestInvalidLimit = Code(
            "request.invalid_limit", .invalidInput, "`limit` is not an integer in the allowed range.")
        public static let requestInvalidCursor = Code(
            "request.invalid_cursor", .invalidInput, "`after` is not a cursor from a previous page.")
        public static let requestInvalidRejections = Code(
            "request.invalid_rejections", .invalidInput, "`rejections` is not an integer from 0 to 10000.")
        public static let requestTooLarge = Code(
            "request.too_large", .tooLarge, "The body is larger than the route accepts; nothing was recorded.")
        public static let textControlCharacters = Code(
            "text.control_characters", .invalidInput, "A text field holds control characters.")
        public static let textInvisibleCharacters = Code(
            "text.invisible_characters", .invalidInput,
            "A text field holds invisible formatting characters (zero-width, bidirectional controls).")
        public static let textInvalidUtf8 = Code("text.invalid_utf8", .invalidInput, "A text field is not valid UTF-8.")
        public static let subjectMissing = Code("subject.missing", .invalidInput, "No subject identifier was given.")
        public static let subjectAmbiguous = Code(
            "subject.ambiguous", .invalidInput, "More than one subject identifier was given; give exactly one.")
        public static let subjectUnknownIdentifier = Code(
            "subject.unknown_identifier", .invalidInput,
            "The identifier is not one Steward knows (email, phone, externalId, deviceId, subjectId).")
        public static let subjectInvalidId = Code("subject.invalid_id", .invalidInput, "`subjectId` is not a UUID.")
        public static let subjectNotFound = Code(
            "subject.not_found", .notFound, "No subject matches (or it was merged away, for a merge source).")
        public static let subjectUnknown = Code(
            "subject.unknown", .unprocessable, "A record names a subject id that does not exist.")
        public static let subjectSuppressed = Code(
            "subject.suppressed", .conflict,
            "An import names a person erased on their request (the suppression list): it is refused, so that a replayed export cannot re-add their consent. A record by the person themselves (any method but import) is accepted."
        )
        public static let subjectMergeSelf = Code(
            "subject.merge_self", .unprocessable, "A merge names the same subject as source and target.")
        public static let identityMissing = Code(
            "identity.missing", .invalidInput, "Linking needs exactly one identity.")
        public static let identityInvalidEmail = Code(
            "identity.invalid_email", .invalidInput, "Not a valid email address.")
        public static let identityInvalidPhone = Code(
            "identity.invalid_phone", .invalidInput, "Not an international E.164 phone number.")
        public static let identityInvalidExternalId = Code(
            "identity.invalid_external_id", .invalidInput,
            "An externalId that is empty, too long or holds refused characters.")
        public static let identityInvalidDeviceId = Code(
            "identity.invalid_device_id", .invalidInput,
            "A deviceId that is empty, too long or holds refused characters.")
        public static let identityBelongsToOtherSubject = Code(
            "identity.belongs_to_other_subject", .conflict,
            "The identity belongs to another subject: merge the two instead.")
        public static let purposeMissing = Code("purpose.missing", .invalidInput, "`purpose` is absent or empty.")
        public static let purposeUnknown = Code(
            "purpose.unknown", .unprocessable, "The purpose is not declared in the loaded policy.")
        public static let purposeNotConsentable = Code(
            "purpose.not_consentable", .unprocessable, "The purpose is notice-only: there is no choice to record.")
        public static let decisionMissing = Code("decision.missing", .invalidInput, "`decision` is absent.")
        public static let decisionInvalid = Code(
            "decision.invalid", .invalidInput, "`decision` is not granted, denied or withdrawn.")
        public static let methodInvalid = Code(
            "method.invalid", .invalidInput, "`method` is not a known collection method.")
        public static let noticeUnknown = Code(
            "notice.unknown", .unprocessable, "The notice id and version are not declared in the policy.")
        public static let proofInvalidIp = Code(
            "proof.invalid_ip", .invalidInput, "`proof.ip` is not an IPv4 or IPv6 address.")
        public static let proofUserAgentTooLong = Code(
            "proof.user_agent_too_long", .invalidInput, "`proof.userAgent` is too long or holds refused characters.")
        public static let consentNoticeRequired = Code(
            "consent.notice_required", .unprocessable, "A grant of a consent-based purpose must name the notice shown.")
        public static let consentMethodReserved = Code(
            "consent.method_reserved", .unprocessable,
            "The method is recorded by Steward itself (double opt-in confirmation, GPC).")
        public static let consentSourceTooLong = Code(
            "consent.source_too_long", .invalidInput, "`source` is too long or holds refused characters.")
        public static let consentStringTooLong = Code(
            "consent.string_too_long", .invalidInput, "`consentString` is too long or holds refused characters.")
        public static let consentConfirmedAtInvalid = Code(
            "consent.confirmed_at_invalid", .invalidInput, "`confirmedAt` is not an RFC 3339 time or a date.")
        public static let consentConfirmedAtNotAllowed = Code(
            "consent.confirmed_at_not_allowed", .unprocessable, "Only an imported grant may carry `confirmedAt`.")
        public static let consentConfirmedAtInFuture = Code(
            "consent.confirmed_at_in_future", .unprocessable, "`confirmedAt` lies in the future.")
        public static let consentDecisionsInvalid = Code(
            "consent.decisions_invalid", .invalidInput,
            "`decisions` is empty, has more than 50 entries, or comes with `purpose` or `decision` (give one form).")
        public static let consentPurposeRepeated = Code(
            "consent.purpose_repeated", .invalidInput, "Two decisions of one record name the same purpose.")
        public static let checkBatchSize = Code(
            "check.batch_size", .invalidInput, "A batch check holds no pair, or more than 1,000.")
        public static let consentConfirmationRequired = Code(
            "consent.confirmation_required", .unprocessable,
            "A bulk grant of a double opt-in purpose needs `confirmedAt` (or tokens asked for).")
        public static let confirmationTokenMissing = Code(
            "confirmation.token_missing", .invalidInput, "The confirmation token is absent.")
        public static let confirmationUnknownToken = Code(
            "confirmation.unknown_token", .notFound, "No pending confirmation has this token.")
        public static let confirmationAlreadyUsed = Code(
            "confirmation.already_used", .conflict, "The token was already used.")
        public static let confirmationExpired = Code("confirmation.expired", .conflict, "The token has expired.")
        public static let confirmationSuperseded = Code(
            "confirmation.superseded", .conflict,
            "The grant's subject no longer exists as it was (the pending grant cannot be confirmed).")
        public static let bulkEmpty = Code("bulk.empty", .invalidInput, "The bulk body holds no JSON lines.")
        public static let bulkBusy = Code(
            "bulk.busy", .unavailable,
            "Other bulk requests hold every slot; nothing was recorded, retry after `Retry-After`.")
        public static let importUnknownColumn = Code(
            "import.unknown_column", .invalidInput,
            "A CSV header cell is not a known column (named by position, never by value).")
        public static let importDuplicateColumn = Code(
            "import.duplicate_column", .invalidInput, "The CSV header names a column twice.")
        public static let importColumnCount = Code(
            "import.column_count", .invalidInput, "A CSV row has a different number of fields than the header.")
        public static let importStrayQuote = Code(
            "import.stray_quote", .invalidInput, "A quote inside an unquoted field or after a closing quote.")
        public static let importUnclosedQuote = Code(
            "import.unclosed_quote", .invalidInput, "A quoted field never closes; the lines it swallowed are counted.")
        public static let importFieldTooLong = Code(
            "import.field_too_long", .invalidInput, "A field is longer than the reader's bound (an unclosed quote?).")
        public static let importNotUtf8 = Code(
            "import.not_utf8", .invalidInput, "The CSV header or a row is not UTF-8 text.")
        public static let keyInvalidName = Code(
            "key.invalid_name", .invalidInput, "The key name is empty, too long or holds refused characters.")
        public static let keyInvalidRole = Code(
            "key.invalid_role", .invalidInput, "The role is not one of the defined roles.")
        public static let keyNotFound = Code("key.not_found", .notFound, "No API key has this id.")
        public static let jobNotFound = Code("job.not_found", .notFound, "No job has this id.")
        public static let jobInvalidState = Code("job.invalid_state", .invalidInput, "`state` is not a job state.")
        public static let jobInvalidKind = Code(
            "job.invalid_kind", .invalidInput, "`kind` is too long or holds refused characters.")
        public static let jobNotRetryable = Code(
            "job.not_retryable", .conflict, "Only a job that needs attention or was cancelled can be retried.")
        public static let jobUndecodable = Code(
            "job.undecodable", .internalFailure,
            "A job's stored payload, cursor or result does not decode as its kind's (the field says which); the job needs attention."
        )
        public static let systemUnknown = Code(
            "datamap.system_unknown", .notFound, "No system of the data map has this key.")
        public static let connectorUnsupported = Code(
            "connector.unsupported", .unprocessable,
            "The system's kind does not do this: an http system has no schema or rows Steward can read (drift, discovery)."
        )
        public static let connectorRefused = Code(
            "connector.refused", .unprocessable,
            "The http system refused the delivery (a 4xx other than 408 and 429); the task needs attention. The detail names the status, never the body."
        )
        public static let connectorProtocol = Code(
            "connector.protocol", .unprocessable,
            "The http system's answer does not follow the protocol (status, report or size); the task needs attention. The detail names the field."
        )
        public static let connectorSystemFailed = Code(
            "connector.system_failed", .unprocessable,
            "The http system reported that it could not carry out the delivery (the detail names its reason code); the task needs attention."
        )
        public static let connectorCallbackOverdue = Code(
            "connector.callback_overdue", .unprocessable,
            "The http system took a delivery on (202) and did not call back within its `callback_within` (default 7 days); the task needs attention, and a retry sends a new delivery."
        )
        public static let connectorNotConfigured = Code(
            "connector.not_configured", .unprocessable,
            "The system's connection reference is not set in this Steward's environment (or its file cannot be read, or holds no valid URL)."
        )
        public static let connectorUnavailable = Code(
            "connector.unavailable", .unavailable,
            "The customer's system cannot be reached or read (refused, unreachable, timed out); nothing was read.")
        public static let scanInvalidSample = Code(
            "scan.invalid_sample", .invalidInput, "`sample` is not an integer from 1 to 100000.")
        public static let reportInvalidFormat = Code(
            "report.invalid_format", .invalidInput, "`format` is not one of json, csv or html.")
        public static let requestUnknownRegime = Code(
            "request.unknown_regime", .unprocessable, "No regime of requests.yaml has this key.")
        public static let requestTypeNotGranted = Code(
            "request.type_not_granted", .unprocessable, "The regime does not grant this request type.")
        public static let requestNotFound = Code("request.not_found", .notFound, "No data subject request has this id.")
        public static let requestInvalidTransition = Code(
            "request.invalid_transition", .conflict,
            "The request's status does not allow this step (the detail names the status and the step).")
        public static let requestExtensionNotAllowed = Code(
            "request.extension_not_allowed", .conflict, "The regime grants no extension for this request type.")
        public static let requestAlreadyExtended = Code(
            "request.already_extended", .conflict, "The request's deadline was extended already; it extends once.")
        public static let requestExtensionReasonMissing = Code(
            "request.extension_reason_missing", .invalidInput, "An extension needs its reason (GDPR Art. 12(3)).")
        public static let requestExtensionTooLate = Code(
            "request.extension_too_late", .conflict,
            "The deadline has passed: an extension is decided, and the person told, before it.")
        public static let requestVerificationFailed = Code(
            "request.verification_failed", .internalFailure,
            "After a system's erasure, the re-read found the subject's values left (the detail names where); the system's transaction was rolled back and the task is retried, then needs attention."
        )
        public static let requestSignatureInvalid = Code(
            "request.signature_invalid", .unauthorized,
            "A system's callback is not signed by that system's secret: the `Steward-Signature` header is missing, malformed, more than 5 minutes from now, or does not match the body."
        )
        public static let requestCallbackStale = Code(
            "request.callback_stale", .conflict,
            "The callback names a delivery that is not the system's current one, or its task is not waiting for a callback; nothing was recorded."
        )
        public static let requestTokenUnknown = Code(
            "request.token_unknown", .notFound,
            "The request waits for no such verification token (or a newer one replaced it).")
        public static let requestTokenUsed = Code(
            "request.token_used", .conflict, "The verification token was used already; a token verifies once.")
        public static let requestTokenExpired = Code(
            "request.token_expired", .conflict,
            "The verification token has expired (7 days); `POST /v1/requests/{id}/token` issues a new one.")
        public static let requestPackageUnavailable = Code(
            "request.package_unavailable", .conflict,
            "Only a completed access or portability request has an export package (the detail says which it is).")
        public static let requestPackageExpired = Code(
            "request.package_expired", .gone,
            "The export package's time is over (STEWARD_REQUESTS_PACKAGE_DAYS after completion): its data was purged.")
        public static let requestCorrectionsMissing = Code(
            "request.corrections_missing", .invalidInput,
            "A rectification carries its corrections (1 to 50), and only a rectification carries any.")
        public static let requestCorrectionInvalid = Code(
            "request.correction_invalid", .invalidInput,
            "A correction names exactly one of `category` and `field`, and its value is 1 to 4,096 characters of text.")
        public static let requestCorrectionConflict = Code(
            "request.correction_conflict", .unprocessable,
            "Two corrections set the same field (a category's and one of its fields', or the same one twice): say each field's value once."
        )
        public static let requestCorrectionUnmapped = Code(
            "request.correction_unmapped", .unprocessable,
            "The correction's category or field is not one the data map can correct: unknown, not personal, a key or link, or kept as recorded (the detail says which)."
        )
        public static let requestSubmittedAtInvalid = Code(
            "request.submitted_at_invalid", .invalidInput,
            "`submittedAt` is not an RFC 3339 time, or is in the future or more than a year ago.")
        public static let requestLinkUnknown = Code(
            "request.link_unknown", .notFound, "No export package has this download link.")
        public static let requestConstraint = Code(
            "request.constraint", .conflict,
            "The customer's system refused a change of the request (a constraint the data map does not know); nothing of that system's work was committed."
        )
        public static let storeUnavailable = Code(
            "store.unavailable", .unavailable, "The database cannot be reached; nothing was applied.")
        public static let storeBusy = Code(
            "store.busy", .unavailable,
            "Concurrent changes kept conflicting past the retries; nothing was applied, retry.")
        public static let storeRejected = Code(
            "store.rejected", .unprocessable, "The database refused this bulk line (a constraint); it was not recorded."
        )
        public static let storeUniqueViolation = Code(
            "store.unique_violation", .conflict,
            "A concurrent writer created the same row first (retried inside Steward; seen only if retries run out).")
        public static let storeIntegrity = Code(
            "store.integrity", .internalFailure,
            "The database holds a value this version does not know; nothing was answered from it.")
        public static let internalError = Code(
            "internal", .internalFailure, "An unexpected error; quote the request id.")
        public static let rootKeyMissing = Code(
            "root_key.missing", .refused, "The database holds data written under a root key and none was given.")
        public static let rootKeyMismatch = Code(
            "root_key.mismatch", .refused, "The given root key does not match the data (its check value differs).")
        public static let rootKeyInvalid = Code(
            "root_key.invalid", .refused,
            "The root key file or value is unreadable, the wrong size, or readable by others.")

        /// Every code, in catalogue order.
        public static let all: [Code] = [
            .authUnauthenticated,
            .authForbidden,
            .routeNotFound,
            .routeMethodNotAllowed,
            .requestAborted,
            .requestRejected,
            .requestMalformedJson,
            .requestMissingField,
            .requestMissingValue,
            .requestWrongType,
            .requestInvalidValue,
            .requestInvalidId,
            .requestInvalidLimit,
            .requestInvalidCursor,
            .requestInvalidRejections,
            .requestTooLarge,
            .textControlCharacters,
            .textInvisibleCharacters,
            .textInvalidUtf8,
            .subjectMissing,
            .subjectAmbiguous,
            .subjectUnknownIdentifier,
            .subjectInvalidId,
            .subjectNotFound,
            .subjectUnknown,
            .subjectSuppressed,
            .subjectMergeSelf,
            .identityMissing,
            .identityInvalidEmail,
            .identityInvalidPhone,
            .identityInvalidExternalId,
            .identityInvalidDeviceId,
            .identityBelongsToOtherSubject,
            .purposeMissing,
            .purposeUnknown,
            .purposeNotConsentable,
            .decisionMissing,
            .decisionInvalid,
            .methodInvalid,
            .noticeUnknown,
            .proofInvalidIp,
            .proofUserAgentTooLong,
            .consentNoticeRequired,
            .consentMethodReserved,
            .consentSourceTooLong,
            .consentStringTooLong,
            .consentConfirmedAtInvalid,
            .consentConfirmedAtNotAllowed,
            .consentConfirmedAtInFuture,
            .consentDecisionsInvalid,
            .consentPurposeRepeated,
            .checkBatchSize,
            .consentConfirmationRequired,
            .confirmationTokenMissing,
            .confirmationUnknownToken,
            .confirmationAlreadyUsed,
            .confirmationExpired,
            .confirmationSuperseded,
            .bulkEmpty,
            .bulkBusy,
            .importUnknownColumn,
            .importDuplicateColumn,
            .importColumnCount,
            .importStrayQuote,
            .importUnclosedQuote,
            .importFieldTooLong,
            .importNotUtf8,
            .keyInvalidName,
            .keyInvalidRole,
            .keyNotFound,
            .jobNotFound,
            .jobInvalidState,
            .jobInvalidKind,
            .jobNotRetryable,
            .jobUndecodable,
            .systemUnknown,
            .connectorUnsupported,
            .connectorRefused,
            .connectorProtocol,
            .connectorSystemFailed,
            .connectorCallbackOverdue,
            .connectorNotConfigured,
            .connectorUnavailable,
            .scanInvalidSample,
            .reportInvalidFormat,
            .requestUnknownRegime,
            .requestTypeNotGranted,
            .requestNotFound,
            .requestInvalidTransition,
            .requestExtensionNotAllowed,
            .requestAlreadyExtended,
            .requestExtensionReasonMissing,
            .requestExtensionTooLate,
            .requestVerificationFailed,
            .requestSignatureInvalid,
            .requestCallbackStale,
            .requestTokenUnknown,
            .requestTokenUsed,
            .requestTokenExpired,
            .requestPackageUnavailable,
            .requestPackageExpired,
            .requestCorrectionsMissing,
            .requestCorrectionInvalid,
            .requestCorrectionUnmapped,
            .requestCorrectionConflict,
            .requestSubmittedAtInvalid,
            .requestLinkUnknown,
            .requestConstraint,
            .storeUnavailable,
            .storeBusy,
            .storeRejected,
            .storeUniqueViolation,
            .storeIntegrity,
            .internalError,
            .rootKeyMissing,
            .rootKeyMismatch,
            .rootKeyInvalid,
        ]

        /// The code with this raw value, if the catalogue has it.
        public init?(rawValue: String) {
            guard let found = Code.all.first(where: { $0.rawValue == rawValue }) else { return nil }
            self = found
        }
    }
}
