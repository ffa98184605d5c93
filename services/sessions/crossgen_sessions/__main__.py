from pathlib import Path

from crossgen_sessions.app import create_app
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared import cli


def main() -> None:
    cli.main("sessions", SessionsSettings, create_app, Path(__file__).parent / "migrations")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
