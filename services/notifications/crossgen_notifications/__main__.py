from pathlib import Path

from crossgen_notifications.app import create_app
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared import cli

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    cli.main("notifications", NotificationsSettings, create_app, MIGRATIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
