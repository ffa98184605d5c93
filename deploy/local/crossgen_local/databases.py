"""A fresh database with a service's migrations applied, for tests that need real PostgreSQL."""

import weakref
from pathlib import Path
from uuid import uuid4

from crossgen_local.postgres import LocalPostgres
from crossgen_shared import migrations

# The database each server has migrated for each service (by migrations folder), that the next
# ones are copied from: kept with the server's object, not its URL, which a later server may reuse.
_MIGRATED: "weakref.WeakKeyDictionary[LocalPostgres, dict[Path, str]]" = weakref.WeakKeyDictionary()


def migrated_database(postgres: LocalPostgres, migrations_dir: Path) -> str:
    """Create a database at the newest migration and return its URL. The first for a server and
    a service runs the migrations; the next are copies of it (``CREATE DATABASE … TEMPLATE``),
    which took 0.15 s here, against 0.2-0.4 s to run them again."""
    templates, key = _MIGRATED.setdefault(postgres, {}), migrations_dir.resolve()
    if (template := templates.get(key)) is None:
        template = f"test_{uuid4().hex[:12]}_migrated"  # copied from, never used
        postgres.create_database(template)
        migrations.upgrade(migrations_dir, postgres.url(template))
        templates[key] = template
    name = f"test_{uuid4().hex[:12]}"
    postgres.create_database(name, template=template)
    return postgres.url(name)
