"""SCIM 2.0 (RFC 7643 / 7644) for the directory, served at ``/scim/v2``: what identity providers
(Entra ID, Okta, …) provision to. Resources and filters come from scim2-models."""

from fastapi import APIRouter

from crossgen_matching.directory.scim import discovery, users

router = APIRouter(prefix="/scim/v2", tags=["scim"])
router.include_router(discovery.router)
router.include_router(users.router)
