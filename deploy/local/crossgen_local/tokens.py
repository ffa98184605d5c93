"""A stand-in identity provider for the demo and tests: an RSA key pair that signs bearer JWTs.

Services verify with the public key (``<PREFIX>_JWT_PUBLIC_KEY``), as they would with a JWKS URL.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://idp.crossgen.example"
AUDIENCE = "crossgen"


@dataclass
class TokenIssuer:
    issuer: str = ISSUER
    audience: str = AUDIENCE
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def token(self, subject: str, *roles: str, lifetime: int = 3600, **extra: Any) -> str:
        """A signed token; ``extra`` adds claims (e.g. ``programs=[...]`` for a program owner)."""
        now = int(time.time())
        claims = extra | {
            "sub": subject,
            "roles": list(roles),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self._key, algorithm="RS256")

    def headers(self, subject: str, *roles: str, **extra: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, *roles, **extra)}"}

    def service_env(self, prefix: str) -> dict[str, str]:
        """The JWT settings a service needs to trust these tokens."""
        return {
            f"{prefix}_JWT_ISSUER": self.issuer,
            f"{prefix}_JWT_AUDIENCE": self.audience,
            f"{prefix}_JWT_PUBLIC_KEY": self.public_key_pem,
        }
