from pathlib import Path

from crossgen_matching.app import create_app
from crossgen_matching.directory.csv_import import IMPORT_EMPLOYEES
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import cli


def main() -> None:
    cli.main(
        "matching",
        MatchingSettings,
        create_app,  # type: ignore[arg-type]
        Path(__file__).parent / "migrations",
        commands=[IMPORT_EMPLOYEES],
    )


if __name__ == "__main__":
    main()
