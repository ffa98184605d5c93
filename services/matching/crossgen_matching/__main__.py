from pathlib import Path

from crossgen_matching.app import create_app
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import cli


def main() -> None:
    cli.main("matching", MatchingSettings, create_app, Path(__file__).parent / "migrations")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
