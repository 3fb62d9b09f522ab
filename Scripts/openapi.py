#!/usr/bin/env python3
"""Writes Sources/StewardHTTP/OpenAPIDocument.swift (the OpenAPI 3.1 document served at /openapi.json)
and Docs/openapi.json from the route list below. Tests hold the document against the router."""
import json, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
problem = {"$ref": "#/components/responses/Problem"}
def op(summary, permission=None, params=(), body=None, ok="200", ok_schema=None, tags=(), errors=(), store=True, ok_type="application/json"):
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
    if body: o["requestBody"] = {"required": True, "content": body}
    return o
q = lambda n, d, req=False, schema=None: {"name": n, "in": "query", "required": req, "description": d, "schema": schema or {"type": "string"}}
p = lambda n, d, schema=None: {"name": n, "in": "path", "required": True, "description": d, "schema": schema or {"type": "string"}}
uuid = {"type": "string", "format": "uuid"}
limit = lambda most: q("limit", f"1..{most}", schema={"type": "integer", "minimum": 1, "maximum": most})
subject_q = [q("email", "email address"), q("phone", "E.164 phone"), q("externalId", "customer id"), q("deviceId", "device id"), q("subjectId", "Steward subject id", schema=uuid)]
ref = lambda n: {"$ref": f"#/components/schemas/{n}"}
# Request examples: valid against the default policy (Policies/), so the fuzzer's examples phase also
# sends requests that succeed and holds their answers to the response schemas.
examples = {
  "RecordConsent": {"subject": {"email": "ada@example.com"}, "purpose": "marketing.email", "decision": "granted",
                    "notice": {"id": "newsletter-signup", "version": "3"}, "method": "web_form",
                    "proof": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0"}},
  "Identity": {"phone": "+14155550123"},
  "CreateKey": {"name": "billing service", "role": "service"},
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
  "/v1/consents": {"post": op("Record a consent decision (Sec-GPC: 1 also opts out of sale/sharing)", "consent:record", body=jsonb("RecordConsent"), ok="201", ok_schema=ref("RecordResult"), tags=["consent"], errors=["404", "422"])},
  "/v1/consents/bulk": {"post": op("Record many decisions from JSON lines (at most 64 MiB by default), in atomic batches of 1,000; 503 bulk.busy while the allowed number already run", "consent:record", body={"application/x-ndjson": {"schema": {"type": "array", "items": ref("RecordConsent"), "description": "one RecordConsent object per line; a line that fails is reported in the result, the others are recorded. A grant for a double opt-in purpose needs confirmedAt here (consent.confirmation_required otherwise): this answer has no place for confirmation tokens, so record such grants one by one with POST /v1/consents"}}}, ok_schema=ref("BulkResult"), tags=["consent"], params=[q("rejections", "how many rejections to list, 0 to 10000 (default 100); all are counted", schema={"type": "integer", "minimum": 0, "maximum": 10000})])},
  "/v1/consents/confirm": {"post": op("Confirm a pending double opt-in grant with its token", "consent:record", body=jsonb("Confirm"), ok_schema=ref("RecordResult"), tags=["consent"], errors=["404", "409"])},
  "/v1/consents/check": {"get": op("May this subject's data be used for this purpose now?", "consent:check", params=subject_q + [q("purpose", "purpose key", True)], ok_schema=ref("Check"), tags=["consent"], errors=["422"])},
  "/v1/audiences/{purpose}": {"get": op("Subjects whose current state allows the purpose", "consent:read", params=[p("purpose", "purpose key"), q("cursor", "from nextCursor"), limit(10000)], tags=["consent"], errors=["422"])},
  "/v1/subjects": {"get": op("Find the subject an identity belongs to", "consent:read", params=subject_q, ok_schema=ref("SubjectFound"), tags=["subjects"], errors=["404"])},
  "/v1/subjects/{id}/consents": {"get": op("Current consent state per purpose", "consent:read", params=[p("id", "subject id", uuid)], tags=["subjects"], errors=["404"])},
  "/v1/subjects/{id}/consents/history": {"get": op("Every consent event, oldest first", "consent:read", params=[p("id", "subject id", uuid), q("cursor", "from nextCursor"), limit(1000)], tags=["subjects"], errors=["404"])},
  "/v1/subjects/{id}/identities": {"post": op("Link another identity to the subject", "subjects:manage", params=[p("id", "subject id", uuid)], body=jsonb("Identity"), ok="201", tags=["subjects"], errors=["404", "409"])},
  "/v1/subjects/{id}/merge": {"post": op("Merge another subject into this one", "subjects:manage", params=[p("id", "target subject id", uuid)], body=jsonb("Merge"), tags=["subjects"], errors=["404", "409", "422"])},
  "/v1/purposes": {"get": op("Purposes in force", "policy:read", tags=["policy"], store=False)},
  "/v1/notices": {"get": op("Privacy notices in force", "policy:read", tags=["policy"], store=False)},
  "/v1/audit": {"get": op("Audit entries in chain order", "audit:read", params=[q("cursor", "from nextCursor"), limit(1000)], tags=["audit"])},
  "/v1/audit/verify": {"get": op("Recompute the audit hash chain", "audit:read", tags=["audit"])},
  "/v1/keys": {"get": op("List API keys (never secrets)", "keys:manage", tags=["keys"]),
               "post": op("Create an API key; the secret is returned once", "keys:manage", body=jsonb("CreateKey"), ok="201", ok_schema=ref("CreatedKey"), tags=["keys"])},
  "/v1/keys/{id}": {"delete": op("Revoke an API key", "keys:manage", params=[p("id", "key id", uuid)], tags=["keys"], errors=["404"])},
}
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
for source, status in [("/v1/consents", "201"), ("/v1/subjects", "200")]:
    for name, target in [("consents", "getSubjectsIdConsents"), ("history", "getSubjectsIdConsentsHistory"),
                         ("linkIdentity", "postSubjectsIdIdentities"), ("merge", "postSubjectsIdMerge")]:
        link(source, "post" if source == "/v1/consents" else "get", status, name, target, {"id": "$response.body#/subjectId"})
link("/v1/consents", "post", "201", "confirm", "postConsentsConfirm", body={"token": "$response.body#/confirmation/token"})
link("/v1/keys", "post", "201", "revoke", "deleteKeysId", {"id": "$response.body#/key/id"})
s = lambda **props: {"type": "object", "properties": props}
string = {"type": "string"}
doc = {
  "openapi": "3.1.0",
  "info": {"title": "Steward API", "version": "1.0.0", "description": "Privacy and consent governance. Errors are application/problem+json with a stable `code` and the offending `field`."},
  "servers": [{"url": "http://127.0.0.1:8080"}],
  "paths": paths,
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key, stw_…"}},
    "responses": {"Problem": {"description": "problem+json", "content": {"application/problem+json": {"schema": ref("Problem")}}}},
    "schemas": {
      "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"], "properties": {"type": string, "title": string, "status": {"type": "integer"}, "detail": string, "code": string, "field": string}},
      "Subject": s(email=string, phone=string, externalId=string, deviceId=string, subjectId=string),
      "RecordConsent": {"type": "object", "required": ["subject", "purpose", "decision"], "properties": {
          "subject": ref("Subject"), "purpose": string, "decision": {"enum": ["granted", "denied", "withdrawn"]},
          "method": {"enum": ["web_form", "api", "import", "banner", "email", "phone_call", "in_person", "tcf", "gpp"]},
          "notice": s(id=string, version=string), "source": string, "proof": s(ip=string, userAgent=string), "consentString": string,
          "confirmedAt": {"type": "string", "description": "When the person confirmed a double opt-in before the record came to Steward (RFC 3339 time or date). Only with method import and decision granted.", "examples": ["2024-03-01T09:30:00Z"]}}},
      "RecordResult": s(subjectId=string, subjectCreated={"type": "boolean"}, event={"type": "object"}, state={"type": "object"}, confirmation=s(token=string, expiresAt=string), gpcOptOuts={"type": "array"}),
      "Check": {"type": "object", "required": ["allowed", "status", "purpose", "basis"], "properties": {"allowed": {"type": "boolean"}, "status": {"enum": ["none", "pending", "granted", "denied", "withdrawn", "expired"]}, "purpose": string, "basis": string, "recordId": string, "decidedAt": string}},
      "BulkResult": {"type": "object", "required": ["accepted", "rejected", "rejectedCount", "rejectedByCode", "rejectionsOmitted"], "properties": {
          "accepted": {"type": "integer"},
          "rejected": {"type": "array", "description": "the first rejections in line order (?rejections=N, default 100)", "items": s(line={"type": "integer"}, code=string, field=string, detail=string)},
          "rejectedCount": {"type": "integer"}, "rejectedByCode": {"type": "object", "additionalProperties": {"type": "integer"}},
          "rejectionsOmitted": {"type": "integer", "description": "rejections counted but not listed"}}},
      "Confirm": {"type": "object", "required": ["token"], "properties": {"token": string}},
      "Identity": s(email=string, phone=string, externalId=string, deviceId=string),
      "Merge": {"type": "object", "required": ["source"], "properties": {"source": string}},
      "SubjectFound": {"type": "object", "required": ["subjectId"], "properties": {"subjectId": string}},
      "CreatedKey": {"type": "object", "required": ["key", "secret"], "properties": {"key": s(id=string, name=string, role=string, prefix=string, createdAt=string), "secret": string}},
      "CreateKey": {"type": "object", "required": ["name", "role"], "properties": {"name": string, "role": {"enum": ["admin", "service", "auditor"]}}},
    },
  },
}
text = json.dumps(doc, indent=2, sort_keys=True)
(root / "Docs").mkdir(exist_ok=True)
(root / "Docs/openapi.json").write_text(text + "\n")
(root / "Sources/StewardHTTP/OpenAPIDocument.swift").write_text(
  "// swift-format-ignore-file\n"
  "// Generated by Scripts/openapi.py: edit the script, then run it. Tests hold this document against the router.\n"
  "enum OpenAPIDocument {\n    static let json = #\"\"\"\n" + text + "\n\"\"\"#\n}\n")
