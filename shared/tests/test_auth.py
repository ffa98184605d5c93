import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crossgen_shared.auth import AuthSettings, TokenVerifier

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
VERIFIER = TokenVerifier(AuthSettings(issuer="idp", audience="crossgen", public_key=PUBLIC))


def token(key: Any = KEY, algorithm: str = "RS256", **overrides: Any) -> str:
    claims = {
        "sub": "E-1",
        "roles": ["admin"],
        "iss": "idp",
        "aud": "crossgen",
        "exp": int(time.time()) + 60,
    } | overrides
    return jwt.encode(claims, key, algorithm=algorithm)


def test_a_valid_token_gives_subject_and_roles() -> None:
    principal = VERIFIER.verify(token())
    assert principal.subject == "E-1"
    assert principal.roles == {"admin"}


@pytest.mark.parametrize(
    "bad",
    [
        token(exp=int(time.time()) - 10),
        token(iss="someone-else"),
        token(aud="another-app"),
        token(key=OTHER_KEY),
        token(key="a-shared-secret-that-is-long-enough-for-hs256!", algorithm="HS256"),
        jwt.encode({"sub": "E-1", "iss": "idp", "aud": "crossgen"}, KEY, algorithm="RS256"),
    ],
    ids=["expired", "issuer", "audience", "signature", "algorithm", "no-expiry"],
)
def test_untrustworthy_tokens_are_rejected(bad: str) -> None:
    with pytest.raises(jwt.InvalidTokenError):
        VERIFIER.verify(bad)


def test_a_key_source_is_required() -> None:
    with pytest.raises(ValueError, match="JWKS"):
        TokenVerifier(AuthSettings(issuer="idp", audience="crossgen"))
