"""The versions constraints.txt pins: what `make bootstrap` and the images install."""

from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
CONSTRAINTS = ROOT / "constraints.txt"


def pins(path: Path = CONSTRAINTS) -> dict[NormalizedName, Version]:
    """Each package's pinned version, by its canonical name. Only exact pins are allowed: a
    range would install whatever is newest again."""
    pinned = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, exact, version = line.partition("==")
        if not exact or name.strip() != name:
            raise ValueError(f"{path.name}: not an exact pin: {line!r}")
        pinned[canonicalize_name(name)] = Version(version)
    return pinned
