"""Posting JSON to a person's chat or webhook URL: allow-listed, pinned, bounded, classified."""

import httpx

from crossgen_notifications.channels import DeliveryError
from crossgen_notifications.channels.urls import UnsafeUrl, UrlPolicy

# The receiver's fault, and lasting: a retry cannot help (408 and 429 ask for one).
_PERMANENT = frozenset(range(400, 500)) - {408, 425, 429}


class HttpPoster:
    def __init__(self, policy: UrlPolicy, timeout: float) -> None:
        self._policy = policy
        # No proxies from the environment and no redirects: either could lead past the allow-list.
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            destination = await self._policy.resolve(url)
        except UnsafeUrl as exc:
            raise DeliveryError(f"refused URL: {exc}", permanent=True) from exc
        try:
            response = await self._client.post(
                destination.url,
                content=body,
                headers=headers | {"Host": destination.netloc, "Content-Type": "application/json"},
                extensions={"sni_hostname": destination.host},
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timed out: {type(exc).__name__}", permanent=False) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        if response.is_success:
            return
        raise DeliveryError(
            f"HTTP {response.status_code}: {response.text[:200]}",
            permanent=response.status_code in _PERMANENT,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
