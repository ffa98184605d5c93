"""JSON from outside: the HRIS topic's records and the SCIM endpoint's request bodies."""

import json
from typing import Any


def parse(raw: str | bytes) -> Any:
    """The JSON value in ``raw``; ValueError saying why there is none. Arrays and objects nested
    deeper than the interpreter's recursion limit (a few kilobytes of brackets) make ``json``
    raise RecursionError, which is no ValueError: a record would be tried again forever, and a
    request answered 500."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("arrays and objects nested too deeply") from None
