#!/usr/bin/env python3
"""Writes Sources/StewardHTTP/OpenAPIDocument.swift, the template of the OpenAPI 3.1 document served at
/openapi.json, from the route list below. The server completes it at start from what it enforces: the
enumerations of the loaded policy's purposes and notices (components PurposeKey, RecordablePurposeKey,
ConsentPurposeKey, NoticeRef) and, for every schema marked `x-steward-text`, the pattern of text the
shared validator (FreeText) accepts. Then rebuild and write Docs/openapi.json (the default policy's):
    .build/debug/steward openapi > Docs/openapi.json
Tests hold the document against the router and Docs/openapi.json against the rendered document.

The rule of these schemas: a request they admit is never refused for its shape. Patterns may be
narrower than what the server accepts (the portable ASCII form of an email address or phone number;
text in the Basic Multilingual Plane), never wider. Refusals that depend on stored state or the clock
are listed per operation in `x-steward-semantic-refusals` and in its description."""
import json, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
problem = {"$ref": "#/components/responses/Problem"}
def op(summary, permission=None, params=(), body=None, ok="200", ok_schema=None, tags=(), errors=(), store=True, ok_type="application/json", semantic=()):
    """`errors`: the statuses besides 400 and 500 the route answers with problem+json (404 unknown id or
    token, 409 conflicting state, 422 unknown purpose or notice). Routes that reach the store (every
    authenticated one does) may answer 503 (unreachable, or busy after retries); routes with a body
    413 when it is too large.
    Scripts/test.sh holds every answer of a fuzzed server to this list (schemathesis)."""
    schema = ok_schema or ({"type": "object"} if ok_type == "application/json" else {"type": "string"})
    o = {"summary": summary, "tags": list(tags), "responses": {ok: {"description": "success", "content": {ok_type: {"schema": schema}}}}}
    if permission:
        o["security"] = [{"bearer": []}]
        o["x-steward-permission"] = permission
        o["responses"].update({"401": problem, "403": problem})
    else:
        o["security"] = []
    statuses = {"400", "500", *errors}
    if store or permission: statuses.add("503")  # authentication reads the key from the store
    if body: statuses.add("413")
    o["responses"].update({status: problem for status in sorted(statuses)})
    if params: o["parameters"] = list(params)
    if semantic:
        o["x-steward-semantic-refusals"] = list(semantic)
        o["description"] = "Refused for stored state or the clock, not the request's shape: " + ", ".join(f"`{c}`" for c in semantic) + "."
    if body: o["requestBody"] = {"required": True, "content": body}
    return o
q = lambda n, d, req=False, schema=None: {"name": n, "in": "query", "required": req, "description": d, "schema": schema or {"type": "string"}}
p = lambda n, d, schema=None: {"name": n, "in": "path", "required": True, "description": d, "schema": schema or {"type": "string"}}
uuid = {"type": "string", "format": "uuid"}
limit = lambda most: q("limit", f"1..{most}", schema={"type": "integer", "minimum": 1, "maximum": most})
ref = lambda n: {"$ref": f"#/components/schemas/{n}"}
def text(kind, most, description):
    """Free text checked by the shared validator; the server fills in its pattern (kind: name, identifier,
    or trimmed-… when surrounding white space is dropped before the check)."""
    return {"type": "string", "minLength": 1, "maxLength": most, "x-steward-text": kind, "description": description}
# Exactly one identifier names a subject: in a query, the object's one property is the parameter
# (form style, exploded: ?email=ada@example.com).
subject_q = [{"name": "subject", "in": "query", "required": True, "style": "form", "explode": True,
              "description": "exactly one of email, phone, externalId, deviceId or subjectId, as its own query parameter",
              "schema": ref("Subject")}]
system_p = p("system", "system key, as in Policies/systems", {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"})
sequence_cursor = q("cursor", "from nextCursor", schema={"type": "string", "pattern": "^[0-9]{1,18}$"})
# RFC 3339 time (seconds, optional milliseconds, Z or an offset) or a date, days 1 to 28 of any month.
rfc3339 = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{3})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]))?$"
examples = {
  "RecordConsent": {"subject": {"email": "ada@example.com"}, "purpose": "marketing.email", "decision": "granted",
                    "notice": {"id": "newsletter-signup", "version": "3"}, "method": "web_form",
                    "proof": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0"}},
  "RecordConsentChoices": {"subject": {"email": "ada@example.com"}, "decisions": {"marketing.email": "granted", "analytics": "denied"},
                           "notice": {"id": "cookie-banner", "version": "2"}, "method": "banner"},
  "BatchCheck": {"checks": [{"subject": {"email": "ada@example.com"}, "purpose": "marketing.email"},
                            {"subject": {"email": "grace@example.com"}, "purpose": "marketing.email"}]},
  "Identity": {"phone": "+14155550123"},
  "CreateKey": {"name": "billing service", "role": "service"},
  "RequestIntake": {"regime": "gdpr", "type": "access", "subject": {"email": "ada@example.com"}, "verified": "pre_verified"},
}
jsonb = lambda n: {"application/json": {"schema": ref(n), **({"example": examples[n]} if n in examples else {})}}
paths = {
  "/health": {"get": op("Liveness, with the server's release", tags=["ops"], store=False,
      ok_schema={"type": "object", "required": ["status", "version"], "properties": {
          "status": {"type": "string", "enum": ["ok"]}, "version": {"type": "string", "examples": ["0.2.0"]}}})},
  "/ready": {"get": op("Readiness: the database answers", tags=["ops"])},
  "/metrics": {"get": op("Prometheus metrics (no personal data in any label)", tags=["ops"], store=False, ok_type="text/plain; version=0.0.4")},
  "/openapi.json": {"get": op("This document", tags=["ops"], store=False)},
  "/.well-known/gpc.json": {"get": op("Global Privacy Control support resource", tags=["consent"], store=False)},
  "/v1/consents": {"post": op("Record a consent decision, or a banner's choices for several purposes in one transaction (Sec-GPC: 1 also opts out of sale/sharing)", "consent:record", body={"application/json": {"schema": {"oneOf": [ref("RecordConsent"), ref("RecordConsentChoices")]}, "examples": {"one": {"value": examples["RecordConsent"]}, "choices": {"value": examples["RecordConsentChoices"]}}}}, ok="201", ok_schema={"anyOf": [ref("RecordResult"), ref("RecordChoicesResult")]}, tags=["consent"], errors=["404", "409", "422"], semantic=["subject.unknown", "subject.suppressed", "consent.confirmed_at_in_future"])},
  "/v1/consents/bulk": {"post": op("Record many decisions from JSON lines (at most 64 MiB by default), in atomic batches of 1,000; 503 bulk.busy while the allowed number already run", "consent:record", body={"application/x-ndjson": {"schema": {"type": "array", "minItems": 1, "items": ref("BulkRecordConsent"), "description": "one RecordConsent object per line; a line that fails is reported in the result, the others are recorded. A grant for a double opt-in purpose needs confirmedAt here (consent.confirmation_required otherwise): this answer has no place for confirmation tokens, so record such grants one by one with POST /v1/consents"}}}, ok_schema=ref("BulkResult"), tags=["consent"], semantic=["subject.unknown", "subject.suppressed", "consent.confirmed_at_in_future"], params=[q("rejections", "how many rejections to list, 0 to 10000 (default 100); all are counted", schema={"type": "integer", "minimum": 0, "maximum": 10000})])},
  "/v1/consents/confirm": {"post": op("Confirm a pending double opt-in grant with its token", "consent:record", body=jsonb("Confirm"), ok_schema=ref("RecordResult"), tags=["consent"], errors=["404", "409"])},
  "/v1/consents/check": {"get": op("May this subject's data be used for this purpose now? One purpose answers a Check; several, or none for every purpose, a CheckSet from one read", "consent:check", params=subject_q + [{"name": "purpose", "in": "query", "required": False, "style": "form", "explode": True, "description": "purpose key; repeat for several, leave out for all", "schema": {"type": "array", "items": ref("PurposeKey"), "uniqueItems": True}}], ok_schema={"anyOf": [ref("Check"), ref("CheckSet")]}, tags=["consent"], errors=["422"]),
                         "post": op("Answer up to 1,000 (subject, purpose) pairs in one call, in order (for a send to a list)", "consent:check", body=jsonb("BatchCheck"), ok_schema=ref("BatchCheckResult"), tags=["consent"], errors=["422"])},
  "/v1/audiences/{purpose}": {"get": op("Subjects whose current state allows the purpose", "consent:read", params=[p("purpose", "purpose key", ref("PurposeKey")), q("cursor", "from nextCursor", schema=uuid), limit(10000)], tags=["consent"], errors=["422"])},
  "/v1/subjects": {"get": op("Find the subject an identity belongs to", "consent:read", params=subject_q, ok_schema=ref("SubjectFound"), tags=["subjects"], errors=["404"])},
  "/v1/subjects/{id}/consents": {"get": op("Current consent state per purpose", "consent:read", params=[p("id", "subject id", uuid)], tags=["subjects"], errors=["404"])},
  "/v1/subjects/{id}/consents/history": {"get": op("Every consent event, oldest first", "consent:read", params=[p("id", "subject id", uuid), sequence_cursor, limit(1000)], tags=["subjects"], errors=["404"])},
  "/v1/subjects/{id}/identities": {"post": op("Link another identity to the subject (201; 200 when it is already linked to it)", "subjects:manage", params=[p("id", "subject id", uuid)], body=jsonb("Identity"), ok="201", tags=["subjects"], errors=["404", "409"])},
  "/v1/subjects/{id}/merge": {"post": op("Merge another subject into this one", "subjects:manage", params=[p("id", "target subject id", uuid)], body=jsonb("Merge"), tags=["subjects"], errors=["404", "409", "422"], semantic=["subject.merge_self"])},
  "/v1/purposes": {"get": op("Purposes in force", "policy:read", tags=["policy"], store=False)},
  "/v1/notices": {"get": op("Privacy notices in force", "policy:read", tags=["policy"], store=False)},
  "/v1/audit": {"get": op("Audit entries in chain order", "audit:read", params=[sequence_cursor, limit(1000)], tags=["audit"])},
  "/v1/audit/verify": {"get": op("Recompute the audit hash chain", "audit:read", tags=["audit"])},
  "/v1/keys": {"get": op("List API keys (never secrets)", "keys:manage", tags=["keys"]),
               "post": op("Create an API key; the secret is returned once", "keys:manage", body=jsonb("CreateKey"), ok="201", ok_schema=ref("CreatedKey"), tags=["keys"])},
  "/v1/keys/{id}": {"delete": op("Revoke an API key", "keys:manage", params=[p("id", "key id", uuid)], tags=["keys"], errors=["404"])},
  "/v1/jobs": {"get": op("Durable jobs, newest first, with counts by state", "jobs:read", tags=["jobs"], ok_schema=ref("JobPage"), params=[
      {"name": "state", "in": "query", "required": False, "style": "form", "explode": True, "description": "only jobs in these states (repeatable)",
       "schema": {"type": "array", "items": ref("JobState"), "uniqueItems": True}},
      q("kind", "only jobs of this kind", schema=text("identifier", 100, "a job kind such as steward.probe")),
      q("cursor", "from nextCursor", schema=uuid), limit(1000)])},
  "/v1/jobs/{id}": {"get": op("One job: state, progress, cursor, lease, last error, result", "jobs:read", params=[p("id", "job id", uuid)], ok_schema=ref("Job"), tags=["jobs"], errors=["404"])},
  "/v1/jobs/{id}/cancel": {"post": op("Cancel a job: at once when queued or needing attention; a running job stops at its next checkpoint", "jobs:manage", params=[p("id", "job id", uuid)], ok_schema=ref("Job"), tags=["jobs"], errors=["404"])},
  "/v1/jobs/{id}/retry": {"post": op("Queue a job that needs attention or was cancelled again, attempts reset", "jobs:manage", params=[p("id", "job id", uuid)], ok_schema=ref("Job"), tags=["jobs"], errors=["404", "409"])},
  "/v1/datamap/taxonomy": {"get": op("Data categories: sensitivity, special-category flags, default erasure", "datamap:read", ok_schema=ref("Taxonomy"), tags=["datamap"], store=False)},
  "/v1/datamap/systems": {"get": op("Systems of the customer store, summarised", "datamap:read", ok_schema=ref("Systems"), tags=["datamap"], store=False)},
  "/v1/datamap/systems/{system}": {"get": op("One system as the map declares it, each field with its effective erasure and purposes", "datamap:read", params=[system_p], ok_schema=ref("System"), tags=["datamap"], errors=["404"], store=False)},
  "/v1/datamap/systems/{system}/drift": {"get": op("Compare the live system's schema with its map (reads the schema, never a row)", "datamap:read", params=[system_p], ok_schema=ref("Drift"), tags=["datamap"], errors=["404", "422"], semantic=["connector.not_configured", "connector.unsupported"])},
  "/v1/datamap/systems/{system}/proposals": {"get": op("Sample the system and propose categories for unclassified columns (counts only; no sampled value is returned)", "datamap:scan", params=[system_p, q("sample", "rows sampled per table, 1..100000 (default 1000)", schema={"type": "integer", "minimum": 1, "maximum": 100000}), q("all", "scan every column and compare with the map", schema={"type": "boolean"})], ok_schema=ref("Proposals"), tags=["datamap"], errors=["404", "422"], semantic=["connector.not_configured", "connector.unsupported"])},
  "/v1/requests": {"post": op("Submit a data subject request on a person's behalf: pre-verified by the calling service, or by an authorized agent; without `verified` it waits for verification. Its deadline is computed at intake from requests.yaml", "requests:create", body=jsonb("RequestIntake"), ok="201", ok_schema=ref("Request"), tags=["requests"], errors=["409", "422"], semantic=["request.type_not_granted", "request.correction_conflict", "request.submitted_at_invalid"]),
                   "get": op("Data subject requests by deadline, soonest first", "requests:read", params=[
                       {"name": "status", "in": "query", "required": False, "style": "form", "explode": True, "description": "one or more statuses", "schema": {"type": "array", "items": ref("RequestStatus")}},
                       q("type", "request type", schema=ref("RequestType")), q("regime", "regime key", schema=ref("RegimeKey")),
                       q("dueBefore", "deadline before this time (RFC 3339)", schema={"type": "string", "pattern": rfc3339}),
                       q("overdue", "open and past the deadline", schema={"type": "boolean"}),
                       q("cursor", "from nextCursor", schema=uuid), limit(1000)], ok_schema=ref("RequestPage"), tags=["requests"])},
  "/v1/requests/{id}": {"get": op("One request, with each system's task: its job's state and, once done, its receipt (counts, fields, holds; never values)", "requests:read", params=[p("id", "request id", uuid)], ok_schema=ref("Request"), tags=["requests"], errors=["404"])},
  "/v1/requests/{id}/verify": {"post": op("Record that the person's identity was verified", "requests:manage", params=[p("id", "request id", uuid)], body=jsonb("RequestVerify"), ok_schema=ref("Request"), tags=["requests"], errors=["404", "409"])},
  "/v1/requests/{id}/approve": {"post": op("Approve a verified request (or one that needs no verification): its systems' tasks start", "requests:manage", params=[p("id", "request id", uuid)], ok_schema=ref("Request"), tags=["requests"], errors=["404", "409"])},
  "/v1/requests/{id}/deny": {"post": op("Deny a request, with the reason", "requests:manage", params=[p("id", "request id", uuid)], body=jsonb("RequestDeny"), ok_schema=ref("Request"), tags=["requests"], errors=["404", "409"])},
  "/v1/requests/{id}/cancel": {"post": op("Cancel a request that has not started", "requests:manage", params=[p("id", "request id", uuid)], ok_schema=ref("Request"), tags=["requests"], errors=["404", "409"])},
  "/v1/requests/{id}/extend": {"post": op("Extend the deadline once, with the reason, before it passes", "requests:manage", params=[p("id", "request id", uuid)], body=jsonb("RequestExtend"), ok_schema=ref("Request"), tags=["requests"], errors=["404", "409"])},
  "/v1/requests/{id}/confirm": {"post": op("The person verified their identity: relay the single-use token delivered to them; the request is verified (and approved where the regime approves by rule)", "requests:create", params=[p("id", "request id", uuid)], body=jsonb("RequestConfirm"), ok_schema=ref("Request"), tags=["requests"], errors=["404", "409"], semantic=["request.token_unknown", "request.token_used", "request.token_expired", "request.invalid_transition"])},
  "/v1/requests/{id}/token": {"post": op("Issue a new verification token for a request still waiting for one (earlier unused tokens stop working)", "requests:create", params=[p("id", "request id", uuid)], ok="201", ok_schema=ref("RequestToken"), tags=["requests"], errors=["404", "409"])},
  "/v1/requests/{id}/package": {"get": op("Download an access or portability request's export package (ZIP: manifest.json, data.json, one CSV per collection, README.txt with the Art. 15 information) until STEWARD_REQUESTS_PACKAGE_DAYS after completion", "requests:export", params=[p("id", "request id", uuid)], ok_type="application/zip", tags=["requests"], errors=["404", "409", "410"])},
  "/v1/requests/{id}/package/link": {"post": op("A download link to the export package for the person (send it to them): a bearer token that opens this package alone, shown once, until the package's time is over", "requests:export", params=[p("id", "request id", uuid)], ok="201", ok_schema=ref("PackageLink"), tags=["requests"], errors=["404", "409", "410"])},
  "/v1/packages/{token}": {"get": op("The person downloads their export package with the link's token (no API key); 410 once its time is over", params=[p("token", "the token of POST /v1/requests/{id}/package/link", {"type": "string", "pattern": "^dl_[A-Za-z0-9_-]{43}$"})], ok_type="application/zip", tags=["requests"], errors=["404", "410"])},
  "/v1/requests/{id}/callbacks/{system}": {"post": op("An http system reports a delivery's outcome: signed with the system's secret (Steward-Signature), not an API key", params=[p("id", "request id", uuid), system_p], body=jsonb("SystemReport"), ok_schema=ref("CallbackAnswer"), tags=["requests"], errors=["401", "404", "409", "422"])},
  "/v1/reports/ropa": {"get": op("Records of processing activities (GDPR Art. 30) as JSON, CSV or HTML", "reports:read", params=[q("format", "json (default), csv or html", schema={"enum": ["json", "csv", "html"]})], tags=["reports"], store=False)},
  "/v1/reports/requests": {"get": op("One calendar year's data subject request metrics (CCPA regulations §7102): per kind received, complied with, denied by reason, open, and the median and mean days to respond", "reports:read", params=[q("year", "the calendar year", True, {"type": "integer", "minimum": 2000, "maximum": 2200}), q("regime", "a regime of requests.yaml (default ccpa)", schema=ref("RegimeKey")), q("format", "json (default) or csv", schema={"enum": ["json", "csv"]})], ok_schema=ref("RequestMetrics"), tags=["reports"], errors=["422"])},
  "/v1/reports/minimisation": {"get": op("Minimisation findings of the data map", "reports:read", ok_schema=ref("Minimisation"), tags=["reports"], store=False)},
}
# The callback is authenticated by the system's signature over the body (ADR 0012), never by a key.
paths["/v1/requests/{id}/callbacks/{system}"]["post"]["security"] = [{"systemSignature": []}]
paths["/v1/requests/{id}/callbacks/{system}"]["post"]["responses"]["401"] = problem
paths["/v1/reports/requests"]["get"]["responses"]["200"]["content"]["text/csv; charset=utf-8"] = {"schema": {"type": "string"}}
# The records of processing come in the format asked for.
paths["/v1/reports/ropa"]["get"]["responses"]["200"]["content"].update({
    "text/csv; charset=utf-8": {"schema": {"type": "string"}}, "text/html; charset=utf-8": {"schema": {"type": "string"}}})
# Operation ids (method + path words) and links: the stateful fuzzing phase follows these from one
# answer to the next request (a recorded subject's state, history, identities and merge; a
# confirmation token; a created key's revocation).
def opid(method, path):
    words = [w for w in path.replace("{", "").replace("}", "").replace(".", "/").replace("-", "/").split("/") if w and w != "v1"]
    return method + "".join(w[:1].upper() + w[1:] for w in words)
for path, operations in paths.items():
    for method, operation in operations.items():
        operation["operationId"] = opid(method, path)
def link(path, method, status, name, target, parameters=None, body=None):
    l = {"operationId": target}
    if parameters: l["parameters"] = parameters
    if body: l["requestBody"] = body
    paths[path][method]["responses"][status].setdefault("links", {})[name] = l
# Linking an identity the subject already has is not an error: 200 with the subject, nothing changed.
paths["/v1/subjects/{id}/identities"]["post"]["responses"]["200"] = {
    "description": "already linked to this subject; nothing changed",
    "content": {"application/json": {"schema": {"type": "object", "required": ["subjectId"], "properties": {"subjectId": {"type": "string"}}}}}}
for source, status in [("/v1/consents", "201"), ("/v1/subjects", "200")]:
    for name, target in [("consents", "getSubjectsIdConsents"), ("history", "getSubjectsIdConsentsHistory"),
                         ("linkIdentity", "postSubjectsIdIdentities"), ("merge", "postSubjectsIdMerge")]:
        link(source, "post" if source == "/v1/consents" else "get", status, name, target, {"id": "$response.body#/subjectId"})
link("/v1/consents", "post", "201", "confirm", "postConsentsConfirm", body={"token": "$response.body#/confirmation/token"})
link("/v1/keys", "post", "201", "revoke", "deleteKeysId", {"id": "$response.body#/key/id"})
link("/v1/requests", "post", "201", "confirm", "postRequestsIdConfirm", {"id": "$response.body#/id"}, body={"token": "$response.body#/verificationToken/token"})
for name, target in [("show", "getRequestsId"), ("verify", "postRequestsIdVerify"), ("approve", "postRequestsIdApprove"),
                     ("deny", "postRequestsIdDeny"), ("cancel", "postRequestsIdCancel"), ("extend", "postRequestsIdExtend"),
                     ("token", "postRequestsIdToken")]:
    link("/v1/requests", "post", "201", name, target, {"id": "$response.body#/id"})
s = lambda **props: {"type": "object", "properties": props}
string = {"type": "string"}
identifiers = {
    "Email": {"type": "string", "maxLength": 254, "pattern": r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){1,4}$",
              "description": "an email address, compared lower-cased; the pattern is the portable ASCII form, and internationalised addresses are accepted too", "examples": ["ada@example.com"]},
    "Phone": {"type": "string", "pattern": r"^\+[1-9][0-9]{7,14}$", "description": "E.164: + and 8 to 15 digits (spaces, dots, dashes, brackets and a leading 00 are accepted too)", "examples": ["+14155550123"]},
    "ExternalId": text("trimmed-identifier", 256, "your customer id; case is kept"),
    "DeviceId": text("trimmed-identifier", 256, "a device or cookie id; case is kept"),
}
identity_refs = {"email": "Email", "phone": "Phone", "externalId": "ExternalId", "deviceId": "DeviceId"}
doc = {
  "openapi": "3.1.0",
  "info": {"title": "Steward API", "version": "1.0.0", "description": "Privacy and consent governance. Errors are application/problem+json with a stable `code` and the offending `field`."},
  "servers": [{"url": "http://127.0.0.1:8080"}],
  "paths": paths,
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key, stw_…"},
                        "systemSignature": {"type": "apiKey", "in": "header", "name": "Steward-Signature",
                                            "description": "t=<unix seconds>,v1=<hex HMAC-SHA-256 of \"<t>.<body>\" under the http system's secret>; within 5 minutes of Steward's clock"}},
    "responses": {"Problem": {"description": "problem+json", "content": {"application/problem+json": {"schema": ref("Problem")}}}},
    "schemas": {
      "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"], "properties": {"type": string, "title": string, "status": {"type": "integer"}, "detail": string, "code": string, "field": string}},
      **identifiers,
      "Subject": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                  "description": "exactly one identifier", "properties": {**{k: ref(v) for k, v in identity_refs.items()}, "subjectId": uuid}},
      "PurposeKey": {"type": "string", "description": "a purpose of the loaded policy (filled in at start)", "enum": ["analytics"]},
      "RecordablePurposeKey": {"type": "string", "description": "a purpose of the loaded policy that is not notice-only (filled in at start)", "enum": ["analytics"]},
      "ConsentPurposeKey": {"type": "string", "description": "a purpose whose legal basis is consent: a grant must name its notice (filled in at start)", "enum": ["analytics"]},
      "NoticeRef": {"type": "object", "required": ["id", "version"], "properties": {"id": string, "version": string},
                    "description": "a notice version of the loaded policy (filled in at start)", "enum": [{"id": "privacy-policy", "version": "2026-01"}]},
      "RecordConsent": {"type": "object", "required": ["subject", "purpose", "decision"], "properties": {
          "subject": ref("Subject"), "purpose": ref("RecordablePurposeKey"), "decision": {"enum": ["granted", "denied", "withdrawn"]},
          "method": {"enum": ["web_form", "api", "import", "banner", "email", "phone_call", "in_person", "tcf", "gpp"]},
          "notice": ref("NoticeRef"), "source": text("name", 200, "where the decision was taken (a page, a form)"),
          "proof": {"type": "object", "properties": {"ip": {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}], "description": "the address the person acted from; stored as a keyed hash"},
                                                     "userAgent": text("name", 1024, "stored as a keyed hash")}},
          "consentString": {"type": "string", "minLength": 1, "maxLength": 8192, "pattern": "^[ -~]+$", "description": "a TCF, GPP or US-privacy string (printable ASCII)"},
          "confirmedAt": {"type": "string", "pattern": rfc3339, "description": "When the person confirmed a double opt-in before the record came to Steward (RFC 3339 time or date, not in the future). Only with method import and decision granted.", "examples": ["2024-03-01T09:30:00Z"]}},
          "allOf": [
              {"if": {"required": ["decision", "purpose"], "properties": {"decision": {"const": "granted"}, "purpose": ref("ConsentPurposeKey")}},
               "then": {"required": ["notice"]}},
              {"if": {"required": ["confirmedAt"]},
               "then": {"required": ["method", "decision"], "properties": {"method": {"const": "import"}, "decision": {"const": "granted"}}}}]},
      "DoubleOptInPurposeKey": {"type": "string", "description": "a purpose confirmed by double opt-in (filled in at start)", "enum": ["analytics"]},
      "BulkRecordConsent": {"allOf": [ref("RecordConsent"), {
          "if": {"required": ["decision", "purpose"], "properties": {"decision": {"const": "granted"}, "purpose": ref("DoubleOptInPurposeKey")}},
          "then": {"required": ["confirmedAt"]}}],
          "description": "a RecordConsent line; a grant of a double opt-in purpose carries confirmedAt (so method import)"},
      "RecordResult": s(subjectId=string, subjectCreated={"type": "boolean"}, event={"type": "object"}, state={"type": "object"}, confirmation=s(token=string, expiresAt=string), gpcOptOuts={"type": "array"}),
      "Check": {"type": "object", "required": ["allowed", "status", "purpose", "basis"], "properties": {"allowed": {"type": "boolean"}, "status": {"enum": ["none", "pending", "granted", "denied", "withdrawn", "expired"]}, "purpose": string, "basis": string, "recordId": string, "decidedAt": string}},
      "BulkResult": {"type": "object", "required": ["accepted", "rejected", "rejectedCount", "rejectedByCode", "rejectionsOmitted"], "properties": {
          "accepted": {"type": "integer"},
          "rejected": {"type": "array", "description": "the first rejections in line order (?rejections=N, default 100)", "items": s(line={"type": "integer"}, code=string, field=string, detail=string)},
          "rejectedCount": {"type": "integer"}, "rejectedByCode": {"type": "object", "additionalProperties": {"type": "integer"}},
          "rejectionsOmitted": {"type": "integer", "description": "rejections counted but not listed"}}},
      "JobState": {"enum": ["queued", "running", "succeeded", "needs_attention", "cancelled"]},
      "Job": {"type": "object", "required": ["id", "kind", "state", "payload", "progress", "attempts", "maxAttempts", "runAfter", "cancelRequested", "createdBy", "createdAt"], "properties": {
          "id": string, "kind": string, "state": ref("JobState"), "idempotencyKey": string, "payload": {"description": "the kind's parameters (ids and settings, no personal values)"},
          "cursor": {"description": "where resumable work stands"}, "progress": {"type": "object", "required": ["done"], "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}}},
          "result": {"description": "the outcome's summary (counts, ids)"}, "lastError": {"type": "string", "description": "code: detail of the last failure"},
          "attempts": {"type": "integer"}, "maxAttempts": {"type": "integer"}, "runAfter": string,
          "lease": {"type": "object", "required": ["owner", "expiresAt"], "properties": {"owner": string, "expiresAt": string}},
          "cancelRequested": {"type": "boolean"}, "createdBy": string, "createdAt": string, "startedAt": string, "finishedAt": string}},
      "JobPage": {"type": "object", "required": ["jobs", "counts"], "properties": {"jobs": {"type": "array", "items": ref("Job")}, "nextCursor": string,
          "counts": {"type": "object", "description": "every job (of the kind asked for) by state", "additionalProperties": {"type": "integer"}}}},
      "Confirm": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string", "pattern": "^dc_[A-Za-z0-9_-]{43}$", "description": "from the answer that recorded the pending grant"}}},
      "Identity": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                   "description": "exactly one identifier", "properties": {k: ref(v) for k, v in identity_refs.items()}},
      "Merge": {"type": "object", "required": ["source"], "properties": {"source": uuid}},
      "Taxonomy": {"type": "object", "required": ["categories"], "properties": {"categories": {"type": "array", "items": {"type": "object",
          "required": ["key", "description", "sensitivity", "gdprSpecial", "gdprCriminal", "ccpaSensitive"],
          "properties": {"key": string, "description": string, "sensitivity": {"enum": ["public", "internal", "personal", "sensitive", "secret"]},
                         "gdprSpecial": {"type": "boolean"}, "gdprCriminal": {"type": "boolean"}, "ccpaSensitive": {"type": "boolean"},
                         "erasure": ref("Erasure"), "keepReason": string}}}}},
      "Erasure": {"enum": ["delete_row", "null", "mask", "hash", "keep"]},
      "Systems": {"type": "object", "required": ["systems"], "properties": {"systems": {"type": "array", "items": {"type": "object",
          "required": ["key", "name", "kind", "purposes", "collections", "fields", "personalFields"],
          "properties": {"key": string, "name": string, "kind": {"enum": ["sqlite", "postgres", "http"]}, "owner": string,
                         "purposes": {"type": "array", "items": string}, "location": string, "processor": string,
                         "collections": {"type": "integer"}, "fields": {"type": "integer"}, "personalFields": {"type": "integer"}}}}}},
      "System": {"type": "object", "required": ["key", "name", "kind", "connection", "purposes", "collections"],
          "properties": {"key": string, "name": string, "kind": {"enum": ["sqlite", "postgres", "http"]},
                         "connection": {"enum": ["env", "file"], "description": "how the connection is referenced; never its value"},
                         "owner": string, "purposes": {"type": "array", "items": string}, "dataSubjects": {"type": "array", "items": string},
                         "location": string, "processor": string, "recipients": {"type": "array", "items": string},
                         "transferSafeguard": string, "retention": string,
                         "collections": {"type": "array", "items": {"type": "object", "required": ["name", "primaryKey", "fields"], "properties": {
                             "name": string, "primaryKey": {"type": "array", "items": string},
                             "fields": {"type": "array", "items": {"type": "object", "required": ["name", "personal", "purposes"], "properties": {
                                 "name": string, "category": string, "sensitivity": string, "personal": {"type": "boolean"}, "identity": string,
                                 "references": string, "erasure": ref("Erasure"), "erasureFrom": {"enum": ["field", "category"]},
                                 "keepReason": string, "purposes": {"type": "array", "items": string}, "protection": string}}}}}}}},
      "Drift": {"type": "object", "required": ["system", "matches", "tables", "columns", "differences"],
          "properties": {"system": string, "matches": {"type": "boolean"}, "tables": {"type": "integer"}, "columns": {"type": "integer"},
                         "differences": {"type": "array", "items": {"type": "object", "required": ["kind", "table", "message"], "properties": {
                             "kind": {"enum": ["undeclared_table", "undeclared_column", "missing_table", "missing_column", "undeclared_foreign_key"]},
                             "table": string, "column": string, "target": string, "message": string}}}}},
      "Proposals": {"type": "object", "required": ["system", "sampleSize", "seconds", "proposed", "toReview", "nothingFound", "disagreeWithMap", "columns", "yaml"],
          "properties": {"system": string, "sampleSize": {"type": "integer"}, "seconds": {"type": "number"}, "proposed": {"type": "integer"},
                         "toReview": {"type": "integer"}, "nothingFound": {"type": "integer"}, "disagreeWithMap": {"type": "integer"},
                         "yaml": {"type": "string", "description": "the proposal file, in the systems YAML shape"},
                         "columns": {"type": "array", "items": {"type": "object", "required": ["table", "column", "status", "confidence", "reason", "sampled"], "properties": {
                             "table": string, "column": string, "status": {"enum": ["proposed", "review", "nothing_found"]}, "category": string,
                             "confidence": {"type": "number", "minimum": 0, "maximum": 1}, "reason": string, "sampled": {"type": "integer"},
                             "identity": string, "mapCategory": string}}}}},
      "Minimisation": {"type": "object", "required": ["findings"], "properties": {"findings": {"type": "array", "items": {"type": "object",
          "required": ["kind", "place", "detail"], "properties": {"kind": string, "place": string, "detail": string}}}}},
      "RegimeKey": {"type": "string", "description": "a regime of the loaded requests.yaml (filled in at start)", "enum": ["gdpr"]},
      "RequestType": {"enum": ["access", "portability", "erasure", "rectification", "restriction", "objection", "opt_out_sale", "limit_sensitive"]},
      "RequestStatus": {"enum": ["received", "verified", "approved", "executing", "completed", "partially_completed", "denied", "cancelled", "failed"]},
      "CorrectableCategory": {"type": "string", "description": "a data category some field of the data map holds that a rectification can set (filled in at start)", "enum": ["user.contact.address.city"]},
      "CorrectableField": {"type": "string", "description": "a field of the data map (system.collection.field) a rectification can set: personal, not a key or link, not kept as recorded (filled in at start)", "enum": ["crm.customers.city"]},
      "Correction": {"description": "a corrected value for every correctable field of a category, or for one field",
                     "oneOf": [{"type": "object", "required": ["category", "value"], "additionalProperties": False, "properties": {"category": ref("CorrectableCategory"), "value": text("name", 4096, "the corrected value (personal data: sealed until the request finishes)")}},
                               {"type": "object", "required": ["field", "value"], "additionalProperties": False, "properties": {"field": ref("CorrectableField"), "value": text("name", 4096, "the corrected value (personal data: sealed until the request finishes)")}}]},
      "RequestIntake": {"type": "object", "required": ["regime", "type", "subject"], "properties": {
          "regime": ref("RegimeKey"), "type": ref("RequestType"),
          "subject": {"type": "object", "additionalProperties": False, "minProperties": 1, "description": "the person's identities: one or more, raw or (email, phone) as the SHA-256 of the normalised value (OpenDSR's sha256 format)",
                      "properties": {**{k: ref(v) for k, v in identity_refs.items()},
                                     "emailSha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "SHA-256 (hex) of the lower-cased email"},
                                     "phoneSha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "SHA-256 (hex) of the E.164 phone number"}}},
          "verified": {"enum": ["pre_verified", "authorized_agent"], "description": "the caller verified the person, or acts as their authorized agent; omitted: the request waits for verification"},
          "agent": text("name", 200, "the authorized agent's name"),
          "corrections": {"type": "array", "minItems": 1, "maxItems": 50, "items": ref("Correction"), "description": "a rectification's corrected values (and only a rectification's); no two may set the same field"},
          "submittedAt": {"type": "string", "pattern": rfc3339, "description": "when the person made the request, where that was before it reached Steward (a form, an agent, a partner's intake; OpenDSR submitted_time): the statutory clock starts there. Within the last year, not in the future.", "examples": ["2026-11-30T09:30:00Z"]}},
          "allOf": [
              {"if": {"required": ["verified"], "properties": {"verified": {"const": "authorized_agent"}}}, "then": {"required": ["agent"]}},
              {"if": {"required": ["type"], "properties": {"type": {"const": "rectification"}}}, "then": {"required": ["corrections"]}},
              {"if": {"required": ["corrections"]}, "then": {"required": ["type"], "properties": {"type": {"const": "rectification"}}}}]},
      "RequestVerify": {"type": "object", "required": ["method"], "properties": {"method": {"enum": ["token", "pre_verified", "authorized_agent"]}}},
      "RequestDeny": {"type": "object", "required": ["reason"], "properties": {"reason": {"enum": ["unverifiable", "not_made_by_subject", "exempt", "manifestly_unfounded", "other"]}}},
      "RequestExtend": {"type": "object", "required": ["reason"], "properties": {"reason": text("trimmed-name", 1000, "why the request needs longer (told to the person)")}},
      "Request": {"type": "object", "required": ["id", "type", "regime", "status", "receivedAt", "receivedOn", "dueOn", "dueAt", "submittedBy", "recordedAt", "updatedAt"], "properties": {
          "id": string, "type": ref("RequestType"), "regime": string, "status": ref("RequestStatus"), "receivedAt": string, "receivedOn": string,
          "dueOn": string, "dueAt": string, "standing": {"enum": ["on_time", "due_soon", "overdue"]}, "acknowledgeBy": string,
          "extendedOn": string, "extensionReason": string, "verification": string, "denial": string, "agent": string,
          "submittedBy": string, "recordedAt": string, "updatedAt": string, "finishedAt": string,
          "verificationToken": ref("RequestToken"),
          "systems": {"type": "array", "items": {"type": "object", "required": ["system", "state", "job"], "properties": {
              "system": string, "state": {"enum": ["pending", "awaiting_callback", "done"]}, "job": string, "jobState": ref("JobState"),
              "attempts": {"type": "integer"}, "lastError": string, "receipt": {"type": "object", "description": "counts per collection, fields and strategies, holds and why, the verification"}}}}}},
      "PackageLink": {"type": "object", "required": ["token", "path", "expiresAt"], "properties": {"token": string, "path": {"type": "string", "description": "/v1/packages/<token>"}, "url": {"type": "string", "description": "the whole link, when STEWARD_PUBLIC_URL is set"}, "expiresAt": string}},
      "RequestToken": {"type": "object", "required": ["token", "expiresAt"], "description": "deliver it to the person; shown once", "properties": {"token": string, "expiresAt": string}},
      "RequestConfirm": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string", "pattern": "^dv_[A-Za-z0-9_-]{43}$", "description": "the token from the request's intake or /token"}}},
      "RequestMetrics": {"type": "object", "required": ["regime", "year", "lines"], "properties": {"regime": string, "year": {"type": "integer"}, "lines": {"type": "array", "items": {"type": "object", "required": ["kind", "types", "received", "compliedInWholeOrPart", "denied", "deniedByReason", "open", "cancelled"], "properties": {
          "kind": {"enum": ["delete", "correct", "know", "opt_out", "limit"]}, "types": {"type": "array", "items": string},
          **{k: {"type": "integer"} for k in ["received", "compliedInWholeOrPart", "denied", "open", "cancelled"]},
          "deniedByReason": {"type": "object", "additionalProperties": {"type": "integer"}}, "medianDays": {"type": "number"}, "meanDays": {"type": "number"}}}}}},
      "SystemReport": {"type": "object", "required": ["delivery", "status"], "description": "completed: the counts per collection (and for access, the rows); failed: a reason code", "properties": {
          "delivery": {**uuid, "description": "the delivery id Steward sent (also its Idempotency-Key)"},
          "status": {"enum": ["completed", "failed"]}, "verified": {"type": "boolean", "description": "the system re-read and found nothing of the subject left"},
          "reason": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$", "description": "why it failed: a code, never free text"},
          "collections": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
              "name": string, **{k: {"type": "integer", "minimum": 0, "maximum": 1000000000} for k in ["located", "read", "deleted", "changed"]}}}},
          "rows": {"type": "object", "description": "access and portability: collection → rows (column → text, number, boolean or null)",
                   "additionalProperties": {"type": "array", "items": {"type": "object"}}}}},
      "CallbackAnswer": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["recorded", "already_recorded", "failure_recorded"]}}},
      "RequestPage": {"type": "object", "required": ["requests"], "properties": {"requests": {"type": "array", "items": ref("Request")}, "nextCursor": string}},
      "SubjectFound": {"type": "object", "required": ["subjectId"], "properties": {"subjectId": string}},
      "CreatedKey": {"type": "object", "required": ["key", "secret"], "properties": {"key": s(id=string, name=string, role=string, prefix=string, createdAt=string), "secret": string}},
      "CreateKey": {"type": "object", "required": ["name", "role"], "properties": {"name": text("trimmed-name", 100, "shown in lists and the audit log"), "role": {"enum": ["admin", "service", "auditor"]}}},
    },
  },
}
# A banner's choices: RecordConsent's shared fields, with `decisions` (purpose key → decision) in place of
# `purpose` and `decision`; the two forms exclude each other.
schemas = doc["components"]["schemas"]
single = schemas["RecordConsent"]
single["not"] = {"required": ["decisions"]}
shared = {k: v for k, v in single["properties"].items() if k not in ("purpose", "decision")}
schemas["RecordConsentChoices"] = {"type": "object", "required": ["subject", "decisions"],
    "not": {"anyOf": [{"required": ["purpose"]}, {"required": ["decision"]}]},
    "properties": {**shared, "decisions": {"type": "object", "minProperties": 1, "maxProperties": 50,
        "propertyNames": ref("RecordablePurposeKey"), "additionalProperties": {"enum": ["granted", "denied", "withdrawn"]},
        "description": "purpose key → decision, each recorded as its own event with the record's notice, method and proof"}},
    "allOf": [
        {"if": {"required": ["decisions"], "properties": {"decisions": ref("ConsentGrantChoice")}}, "then": {"required": ["notice"]}},
        {"if": {"required": ["confirmedAt"]},
         "then": {"required": ["method"], "properties": {"method": {"const": "import"}, "decisions": {"additionalProperties": {"const": "granted"}}}}}]}
schemas["ConsentGrantChoice"] = {"type": "object", "description": "choices that grant a purpose whose legal basis is consent, so need the notice (filled in at start)",
    "anyOf": [{"required": ["analytics"], "properties": {"analytics": {"const": "granted"}}}]}
schemas["RecordChoicesResult"] = {"type": "object", "required": ["subjectId", "subjectCreated", "decisions", "gpcOptOuts"], "properties": {
    "subjectId": string, "subjectCreated": {"type": "boolean"}, "gpcOptOuts": {"type": "array"},
    "decisions": {"type": "array", "description": "in purpose key order", "items": s(event={"type": "object"}, state={"type": "object"}, confirmation=s(token=string, expiresAt=string))}}}
schemas["CheckSet"] = {"type": "object", "required": ["allowed", "checks"], "properties": {
    "allowed": {"type": "boolean", "description": "every purpose asked for is allowed"}, "checks": {"type": "array", "items": ref("Check")}}}
schemas["BatchCheck"] = {"type": "object", "required": ["checks"], "properties": {"checks": {"type": "array", "minItems": 1, "maxItems": 1000,
    "items": {"type": "object", "required": ["subject", "purpose"], "properties": {"subject": ref("Subject"), "purpose": ref("PurposeKey")}}}}}
schemas["BatchCheckResult"] = {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": ref("Check"), "description": "one per pair, in order"}}}
text = json.dumps(doc, indent=2, sort_keys=True)
(root / "Sources/StewardHTTP/OpenAPIDocument.swift").write_text(
  "// swift-format-ignore-file\n"
  "// Generated by Scripts/openapi.py: edit the script, then run it. The server completes this template at\n"
  "// start (OpenAPIRendering.swift); tests hold the result against the router and Docs/openapi.json.\n"
  "enum OpenAPIDocument {\n    static let template = #\"\"\"\n" + text + "\n\"\"\"#\n}\n")
