"""JSON from outside: the HRIS topic's records and the SCIM endpoint's request bodies."""

import json
from typing import Any


def parse(raw: str | bytes) -> Any:
    """The JSON value in ``raw``; ValueError saying why there is none. Arrays and objects nested
    deeper than the interpreter's recursion limit (a few kilobytes of brackets) make ``json``
    raise RecursionError, which is no ValueError: here it is one, so such a record is parked as
    not JSON and such a request answered 400, as any other that is not JSON (it was a 500)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("arrays and objects nested too deeply") from None
