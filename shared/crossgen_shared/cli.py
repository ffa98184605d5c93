"""The command line every service has: ``python -m crossgen_<name> serve|migrate``."""

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from crossgen_shared import migrations
from crossgen_shared.settings import ServiceSettings


def main(
    name: str,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    migrations_dir: Path,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"crossgen-{name}")
    parser.add_argument(
        "command", choices=["serve", "migrate"], help="serve: run the service; migrate: upgrade db"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_factory()
    if args.command == "migrate":
        migrations.upgrade(migrations_dir, settings.database_url)
        return
    uvicorn.run(
        app_factory(settings),
        host=settings.http_host,
        port=settings.http_port,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        log_config=None,
    )
