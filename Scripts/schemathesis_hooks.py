"""Schemathesis hooks for Scripts/fuzz-api.sh: the bulk route's body is JSON lines, one object each."""
import json
import os
import re

import jsonschema
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
    if meta is None or not meta.generation.mode.is_positive or not schema_valid(case):
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


CATALOGUE = set(
    re.findall(
        r"^\| `([a-z0-9_.]+)` \|",
        open(os.path.join(os.path.dirname(__file__), "..", "Docs", "Errors.md"), encoding="utf-8").read(),
        re.MULTILINE,
    )
)


@schemathesis.check
def error_codes_are_catalogued(ctx, response, case):
    """Every problem+json code, and every code a bulk answer counts, is one of Docs/Errors.md's."""
    if response.status_code >= 400:
        try:
            body = response.json()
        except Exception:
            return None  # content_type_conformance holds errors to problem+json
        code = body.get("code") if isinstance(body, dict) else None
        if code not in CATALOGUE:
            raise AssertionError(f"error code {code!r} is not in the catalogue (Docs/Errors.md)")
    elif case.operation.path == "/v1/consents/bulk" and response.status_code == 200:
        unknown = set(response.json().get("rejectedByCode", {})) - CATALOGUE
        if unknown:
            raise AssertionError(f"bulk rejection codes not in the catalogue: {sorted(unknown)}")
    return None


def schema_valid(case):
    """Whether the request really is valid against the document: schemathesis's coverage phase has
    been seen to label a value past a parameter's maxLength as positive. Checks the body and the
    plain query parameters (not the exploded subject object) with jsonschema, refs resolved in the
    document's components."""
    document = case.operation.schema.raw_schema
    components = {"components": document.get("components", {})}

    def valid(schema, value):
        try:
            jsonschema.Draft202012Validator({**schema, **components}, format_checker=jsonschema.FormatChecker()).validate(value)
            return True
        except jsonschema.ValidationError:
            return False

    raw = case.operation.definition.raw
    query = case.query or {}
    for parameter in raw.get("parameters", []):
        if parameter.get("in") != "query" or parameter.get("explode") and parameter.get("style") == "form" and "$ref" in parameter.get("schema", {}):
            continue
        name = parameter["name"]
        if name not in query:
            continue
        value = query[name]
        schema = parameter.get("schema", {})
        if schema.get("type") == "integer":
            try:
                value = int(value)
            except (TypeError, ValueError):
                return False
        if schema.get("type") == "array" and not isinstance(value, list):
            value = [value]
        if not valid(schema, value):
            return False
    body = raw.get("requestBody", {}).get("content", {})
    if case.body is not None and body:
        schema = next(iter(body.values())).get("schema", {})
        if not valid(schema, case.body):
            return False
    return True
