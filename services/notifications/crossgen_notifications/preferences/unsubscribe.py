"""Unsubscribe links: a token that names a person and is signed, so it needs no login.

The token never expires (an old email's link must still work) and only ever turns email off.
The key lives in the database, made by a migration, so every replica checks links alike.
"""

import base64
import binascii
import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crossgen_notifications.models import SigningKey


async def signing_key(session: AsyncSession) -> bytes:
    key = await session.scalar(select(SigningKey.secret).where(SigningKey.name == "unsubscribe"))
    if key is None:
        raise RuntimeError("no unsubscribe signing key: run the migrations")
    return key


def token(key: bytes, person_id: str) -> str:
    subject = _encode(person_id.encode())
    return f"{subject}.{_signature(key, subject)}"


def person_of(key: bytes, token: str) -> str | None:
    """The person a genuine token names; None for anything forged or mangled."""
    subject, _, signature = token.partition(".")
    if not hmac.compare_digest(signature.encode(), _signature(key, subject).encode()):
        return None
    try:
        return base64.urlsafe_b64decode(subject + "=" * (-len(subject) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe?token={token}"


def _signature(key: bytes, subject: str) -> str:
    digest = hmac.new(key, b"unsubscribe:" + subject.encode(), hashlib.sha256).digest()
    return _encode(digest)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
