"""Posting JSON to a person's chat or webhook URL: allow-listed, pinned, bounded, classified."""

import httpx

from crossgen_notifications.channels import DeliveryError
from crossgen_notifications.channels.urls import UnsafeUrl, UrlPolicy

# The receiver's fault, and lasting: a retry cannot help (408 and 429 ask for one).
_PERMANENT = frozenset(range(400, 500)) - {408, 425, 429}
EXCERPT = 200  # characters of an error's body kept in its reason


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
            # The receiver decides how much it answers: only what the log keeps of it is read,
            # and not unpacked (100 MB of zeros as 100 kB of gzip was, whole, for 200
            # characters; unpacking even one chunk of it takes 64 MB).
            async with self._client.stream(
                "POST",
                destination.url,
                content=body,
                headers=headers
                | {
                    "Host": destination.netloc,
                    "Content-Type": "application/json",
                    "Accept-Encoding": "identity",
                },
                extensions={"sni_hostname": destination.host},
            ) as response:
                # The usual short answer is read whole, so the connection is used again.
                excerpt = await _start_of(response)
                if response.is_success:
                    return
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timed out: {type(exc).__name__}", permanent=False) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        raise DeliveryError(
            f"HTTP {response.status_code}: {excerpt}",
            permanent=response.status_code in _PERMANENT,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def _start_of(response: httpx.Response, characters: int = EXCERPT) -> str:
    """The first ``characters`` of a response's text, reading no more of it than they take;
    as it came, if the receiver compressed it though asked not to."""
    start = b""
    async for chunk in response.aiter_raw():
        start += chunk
        if len(start) >= 4 * characters:  # enough bytes for that many characters in UTF-8
            break
    return start.decode(response.encoding or "utf-8", errors="replace")[:characters]
