from pathlib import Path

from crossgen_shared import cli

from crossgen_matching.app import create_app
from crossgen_matching.settings import MatchingSettings


def main() -> None:
    cli.main("matching", MatchingSettings, create_app, Path(__file__).parent / "migrations")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
