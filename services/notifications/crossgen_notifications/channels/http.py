"""Posting JSON to a person's chat or webhook URL: allow-listed, pinned, bounded, classified."""

import asyncio
import contextlib
import email.utils
from datetime import UTC, datetime

import httpx

from crossgen_notifications.channels import DeliveryError
from crossgen_notifications.channels.urls import UnsafeUrl, UrlPolicy

# The receiver's fault, and lasting: a retry cannot help (408 and 429 ask for one). Redirects are
# not followed (one could lead past the allow-list), and a permanent one answers every retry.
_PERMANENT = frozenset(range(400, 500)) - {408, 425, 429} | {301, 308}
EXCERPT = 200  # characters of an error's body kept in its reason
# Shares of the timeout: most of it until the answer's status, a tenth for its body, and the
# rest to spare, so the caller's own timeout never fires once the status is known. A receiver
# that answered 2xx has the message: timing out on its body would send it again.
_UNTIL_STATUS, _FOR_BODY = 0.8, 0.1


class HttpPoster:
    def __init__(self, policy: UrlPolicy, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout
        # No proxies from the environment and no redirects: either could lead past the allow-list.
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        until_status = self._timeout * _UNTIL_STATUS
        try:
            async with asyncio.timeout(until_status):
                response = await self._request(url, body, headers)
        except TimeoutError as exc:
            raise DeliveryError(f"timed out after {until_status:g} s", permanent=False) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        try:
            # The usual short answer is read whole, so the connection is used again.
            excerpt = await _start_of(response, within=self._timeout * _FOR_BODY)
        finally:
            await response.aclose()
        if not response.is_success:
            if response.is_redirect:  # what the person needs to change their URL to
                moved_to = response.headers["Location"][:EXCERPT]
                excerpt = f"redirects to {moved_to}, and redirects are not followed"
            raise DeliveryError(
                f"HTTP {response.status_code}: {excerpt}",
                permanent=response.status_code in _PERMANENT,
                retry_after=_seconds_to_wait(response.headers.get("Retry-After")),
            )

    async def _request(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """Sends the request; the answer's body is left to read."""
        try:
            destination = await self._policy.resolve(url)
        except UnsafeUrl as exc:
            raise DeliveryError(f"refused URL: {exc}", permanent=True) from exc
        request = self._client.build_request(
            "POST",
            destination.url,
            content=body,
            headers=headers
            | {
                "Host": destination.netloc,
                "Content-Type": "application/json",
                # The receiver decides how much it answers: only what the log keeps of it is
                # read, and not unpacked (100 MB of zeros as 100 kB of gzip was, whole, for 200
                # characters; unpacking even one chunk of it takes 64 MB).
                "Accept-Encoding": "identity",
            },
            extensions={"sni_hostname": destination.host},
        )
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _start_of(response: httpx.Response, within: float, characters: int = EXCERPT) -> str:
    """The first ``characters`` of a response's text, reading no more of it than they take and
    for no longer than ``within`` seconds; as it came, if the receiver compressed it though
    asked not to. What came before a stall or a broken connection is all there is."""
    start = b""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(within):
            async for chunk in response.aiter_raw():
                start += chunk
                if len(start) >= 4 * characters:  # enough bytes for that many characters in UTF-8
                    break
    return start.decode(response.encoding or "utf-8", errors="replace")[:characters]


def _seconds_to_wait(retry_after: str | None) -> float | None:
    """Retry-After as seconds from now (RFC 9110: a number of seconds, or an HTTP-date); None
    if absent or not understood."""
    if retry_after is None:
        return None
    if (seconds := retry_after.strip(" \t")).isascii() and seconds.isdigit():
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": an HTTP-date is in GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
