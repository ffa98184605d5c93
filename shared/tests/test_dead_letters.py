"""A dead letter fits the bytes it is given, whatever the record parked: headers, key or value."""

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crossgen_shared import dead_letters

CUT_HEADERS = 80  # bytes the cut headers themselves may add: within a topic's framing room


@given(
    key=st.one_of(st.none(), st.integers(0, 5000).map(lambda n: b"k" * n)),
    value=st.integers(0, 5000).map(lambda n: b"v" * n),
    headers=st.lists(
        st.tuples(
            st.text(max_size=20),
            st.one_of(st.binary(max_size=50), st.integers(0, 3000).map(lambda n: b"\xff" * n)),
        ),
        max_size=5,
    ),
    reason=st.text(max_size=3000),
    limit=st.integers(2500, 6000),
)
def test_a_letter_fits_its_limit_and_keeps_what_fits(
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
    reason: str,
    limit: int,
) -> None:
    record = SimpleNamespace(
        topic="crossgen.hris.v1", partition=1, offset=7, key=key, value=value, headers=headers
    )
    parked = dead_letters.letter("matching:hris", record, reason, limit)
    size = len(parked.key or b"") + len(parked.value) + _size(parked.headers.items())
    cuts = {dead_letters.HEADERS_CUT, dead_letters.KEY_CUT, dead_letters.CUT}
    own = {k: v for k, v in parked.headers.items() if k.startswith(dead_letters.PREFIX)}
    # Only the letter's own headers may be too many for a (tiny) limit: its reason can be long.
    assert size <= limit + CUT_HEADERS * len(cuts & own.keys()) or _size(own.items()) > limit
    # What is kept is the start of what came, and whatever was cut says so.
    assert (key or b"").startswith(parked.key or b"") and value.startswith(parked.value)
    assert (parked.key != key) == (dead_letters.KEY_CUT in parked.headers)
    assert (parked.value != value) == (dead_letters.CUT in parked.headers)
    theirs = {k for k, _ in headers if not k.startswith(dead_letters.PREFIX)}
    assert (theirs - parked.headers.keys() != set()) == (dead_letters.HEADERS_CUT in own)


def _size(headers: Iterable[tuple[str, str]]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in headers)


class JustCreated:
    """An admin client whose broker does not know the topic yet at the first question."""

    def __init__(self) -> None:
        self.asked = 0

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        self.asked += 1
        known = self.asked > 1
        resource = {
            "error_code": 0 if known else 3,  # UNKNOWN_TOPIC_OR_PARTITION
            "error_message": None if known else "This server does not host this topic-partition.",
            "config_entries": [{"config_names": dead_letters.MAX_BYTES, "config_value": "100000"}]
            if known
            else [],
        }
        return [SimpleNamespace(to_object=lambda: {"resources": [resource]})]


async def test_the_room_on_a_topic_just_created_is_asked_again_until_the_broker_knows_it() -> None:
    """A service that has just created its dead-letter topic: the broker did not know it for a
    moment, and the service warned that it could not read its limit."""
    admin = JustCreated()
    assert await dead_letters.room_on(admin, "crossgen.x.deadletter.v1") == 96_000  # type: ignore[arg-type]
    assert admin.asked == 2
