"""A fresh database with a service's migrations applied, for tests that need real PostgreSQL."""

from pathlib import Path
from uuid import uuid4

from crossgen_local.postgres import LocalPostgres
from crossgen_shared import migrations


def migrated_database(postgres: LocalPostgres, migrations_dir: Path) -> str:
    """Create an empty database, upgrade it to the newest migration, return its URL."""
    name = f"test_{uuid4().hex[:12]}"
    postgres.create_database(name)
    url = postgres.url(name)
    migrations.upgrade(migrations_dir, url)
    return url
