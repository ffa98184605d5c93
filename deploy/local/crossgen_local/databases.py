"""A fresh database with a service's migrations applied, for tests that need real PostgreSQL."""

from pathlib import Path
from uuid import uuid4

from crossgen_local.postgres import LocalPostgres
from crossgen_shared import migrations

# The database each server has migrated for each service, that the next ones are copied from.
_MIGRATED: dict[tuple[str, Path], str] = {}


def migrated_database(postgres: LocalPostgres, migrations_dir: Path) -> str:
    """Create a database at the newest migration and return its URL. The first for a server and
    a service runs the migrations; the next are copies of it (``CREATE DATABASE … TEMPLATE``),
    which took 0.15 s here, against 0.2-0.4 s to run them again."""
    key = (postgres.admin_url.render_as_string(), migrations_dir.resolve())
    if (template := _MIGRATED.get(key)) is None:
        template = f"test_{uuid4().hex[:12]}_migrated"  # copied from, never used
        postgres.create_database(template)
        migrations.upgrade(migrations_dir, postgres.url(template))
        _MIGRATED[key] = template
    name = f"test_{uuid4().hex[:12]}"
    postgres.create_database(name, template=template)
    return postgres.url(name)
