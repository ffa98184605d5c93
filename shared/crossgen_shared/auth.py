"""Bearer JWT authentication for every HTTP endpoint but health and metrics.

Tokens are checked for signature (allowed algorithms only), issuer, audience and expiry. Keys come
from a JWKS URL (an identity provider) or a configured public key. Roles are in the `roles` claim.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

Role = Literal["admin", "participant", "integration"]


class AuthSettings(BaseModel):
    issuer: str
    audience: str
    jwks_url: str | None = None
    public_key: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    # Program ids an admin owns (the `programs` claim); program owners see only those.
    programs: frozenset[str] = frozenset()

    def owns(self, program_id: object) -> bool:
        return str(program_id) in self.programs


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        if not settings.jwks_url and not settings.public_key:
            raise ValueError("set a JWT JWKS URL or a JWT public key")
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None

    def verify(self, token: str) -> Principal:
        """Return who the token is for; raise jwt.InvalidTokenError if it must not be trusted."""
        key: Any = (
            self._jwks.get_signing_key_from_jwt(token).key
            if self._jwks
            else self._settings.public_key
        )
        claims = jwt.decode(
            token,
            key,
            algorithms=list(self._settings.algorithms),
            audience=self._settings.audience,
            issuer=self._settings.issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        roles, programs = claims.get("roles", []), claims.get("programs", [])
        if not isinstance(roles, list) or not isinstance(programs, list):
            raise jwt.InvalidTokenError("roles and programs claims must be lists")
        return Principal(
            subject=str(claims["sub"]),
            roles=frozenset(map(str, roles)),
            programs=frozenset(map(str, programs)) if "admin" in roles else frozenset(),
        )


_bearer = HTTPBearer(auto_error=False)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None:
        raise _unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return verifier.verify(credentials.credentials)
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency admitting a caller with any of ``roles`` (401 / 403 otherwise)."""

    async def dependency(principal: Principal = Depends(authenticated)) -> Principal:
        if not principal.roles.intersection(roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"requires role: {' or '.join(roles)}"
            )
        return principal

    return dependency
