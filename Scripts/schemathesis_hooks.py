"""Schemathesis hooks for Scripts/fuzz-api.sh: the bulk route's body is JSON lines, one object each."""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(item) for item in items).encode()
