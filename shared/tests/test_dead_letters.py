"""A dead letter fits the bytes it is given, whatever the record parked: key, value or headers."""

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from crossgen_shared import dead_letters

CUT_HEADERS = 80  # bytes the cut headers themselves may add: within a topic's framing room


@given(
    key=st.one_of(st.none(), st.integers(0, 5000).map(lambda n: b"k" * n)),
    value=st.integers(0, 5000).map(lambda n: b"v" * n),
    headers=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=500)), max_size=5),
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
    size = len(parked.key or b"") + len(parked.value)
    size += sum(len(k) + len(v.encode()) for k, v in parked.headers.items())
    cuts = {dead_letters.KEY_CUT, dead_letters.CUT} & parked.headers.keys()
    assert size <= limit + CUT_HEADERS * len(cuts) or not (parked.key or parked.value)
    # What is kept is the start of what came, and whatever was cut says so.
    assert (key or b"").startswith(parked.key or b"") and value.startswith(parked.value)
    assert (parked.key != key) == (dead_letters.KEY_CUT in parked.headers)
    assert (parked.value != value) == (dead_letters.CUT in parked.headers)
