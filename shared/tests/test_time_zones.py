import pytest

from crossgen_shared import time_zones


def test_an_iana_name_is_known() -> None:
    assert time_zones.known("Europe/Berlin") == "Europe/Berlin"


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "../../etc/passwd", "0" * 300, "\x80" * 200, "Europe/\x00"]
)
def test_anything_else_is_refused_as_not_a_time_zone(name: str) -> None:
    with pytest.raises(ValueError, match="is not an IANA time zone"):
        time_zones.known(name)
