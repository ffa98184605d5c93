"""Signatures on generic webhooks: ``X-Crossgen-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``.

The HMAC is over ``"<t>." + body`` with the person's webhook secret. Signing the time with the body
lets a receiver refuse a replayed request: verify the HMAC, then that ``t`` is recent.
"""

import hashlib
import hmac

HEADER = "X-Crossgen-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(
    secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: True if ``header`` signs ``body`` and is at most ``tolerance`` old."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), _digest(secret, body, timestamp))


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
