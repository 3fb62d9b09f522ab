"""Schemathesis hooks for Scripts/fuzz-api.sh: the bulk route's body is JSON lines, one object each."""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(item) for item in items).encode()


# Statuses that refuse a request for what it holds. 401/403 (credentials), 404 (an id or token that does
# not exist), 409 (stored state in the way) and 429/5xx are answers about the world, not the request.
REFUSALS = {400, 405, 406, 411, 413, 414, 415, 422, 431}


@schemathesis.check
def schema_valid_request_accepted(ctx, response, case):
    """A request the document admits is never refused for its shape: Steward's OpenAPI schemas are
    tightened until they say everything the server checks. The only refusals allowed are the codes an
    operation lists in `x-steward-semantic-refusals` (state or clock, e.g. `subject.unknown`)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    allowed = case.operation.definition.raw.get("x-steward-semantic-refusals", [])
    if case.operation.path == "/v1/consents/bulk" and response.status_code == 200:
        # The bulk route answers 200 and reports each refused line: those are held to the same rule.
        refused = set(response.json().get("rejectedByCode", {})) - set(allowed)
        if refused:
            raise AssertionError(f"schema-valid bulk lines were refused: {sorted(refused)} ({response.text[:300]})")
        return None
    if response.status_code not in REFUSALS:
        return None
    from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

    if is_unexpected_http_status_case(case):  # a coverage probe of methods the path does not take
        return None
    try:
        code = response.json().get("code")
    except Exception:
        code = None
    if code in allowed:
        return None
    raise AssertionError(
        f"a schema-valid request was refused: {response.status_code} {code!r} "
        f"({response.text[:300]}); tighten the schema or list the code as a semantic refusal")
