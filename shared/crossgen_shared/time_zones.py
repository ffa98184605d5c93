"""IANA time zone names, as people and HR systems give them."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def known(name: str) -> str:
    """``name`` if it names an IANA time zone; ValueError saying it does not otherwise."""
    try:
        ZoneInfo(name)
    # OSError: a name no file can have (longer than the file system allows), found by fuzzing.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone") from exc
    return name
