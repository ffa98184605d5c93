"""The versions every install takes (constraints.txt) against what the packages ask for.

`make bootstrap` and the images install with ``pip -c constraints.txt``, so a fresh clone gets
the versions CI last passed with, not whatever was released overnight. A requirement the file
does not pin would install an untested version; one pinned outside what a package allows would
not install at all. `make lock` rewrites the file.
"""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from crossgen_local.constraints import pins

ROOT = Path(__file__).resolve().parents[1]
# Every package of the repository, found rather than listed: one added later is checked too.
PROJECTS = sorted(
    manifest.parent
    for pattern in ("shared/pyproject.toml", "services/*/pyproject.toml", "deploy/*/pyproject.toml")
    for manifest in ROOT.glob(pattern)
)


def projects() -> list[dict]:
    return [tomllib.loads((p / "pyproject.toml").read_text())["project"] for p in PROJECTS]


def declared() -> list[Requirement]:
    """Every requirement of our packages and of the test tooling, as written."""
    lines = [dependency for project in projects() for dependency in project["dependencies"]]
    lines += (ROOT / "requirements-dev.txt").read_text().splitlines()
    return [
        Requirement(requirement) for line in lines if (requirement := line.split("#", 1)[0].strip())
    ]


OWN = {canonicalize_name(project["name"]) for project in projects()}


def test_every_requirement_is_pinned_to_a_version_it_allows() -> None:
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name in OWN or (requirement.marker and not requirement.marker.evaluate()):
            continue
        assert name in pinned, f"{requirement} is not in constraints.txt: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside {requirement}: run `make lock`"
        )


def test_only_third_party_packages_are_pinned() -> None:
    assert not OWN & pins().keys(), "our own packages are installed from the clone"


def test_a_pin_that_is_not_exact_is_refused(tmp_path: Path) -> None:
    """A range would install the newest version again: what the file is there to stop."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\nJinja2==3.1.6\n")
    assert pins(constraints) == {"jinja2": Version("3.1.6")}
    constraints.write_text("# pins\nJinja2==3.1.6\nfastapi>=0.165\n")
    with pytest.raises(ValueError, match=r"not an exact pin: 'fastapi>=0\.165'"):
        pins(constraints)


def test_bootstrap_installs_every_package_the_pins_are_checked_for() -> None:
    """The packages found here are the ones `make bootstrap` installs, and no fewer."""
    bootstrap = (ROOT / "deploy" / "local" / "bootstrap.sh").read_text()
    [listed] = re.findall(r"^packages=\((.*)\)$", bootstrap, flags=re.MULTILINE)
    assert sorted(ROOT / p for p in listed.split()) == PROJECTS
