"""Databases for tests: each at its service's newest migration, the migrations run once."""

import asyncio
import weakref
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import crossgen_sessions
from crossgen_local import databases
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_shared import migrations

MIGRATIONS = Path(crossgen_sessions.__file__).parent / "migrations"


async def applied(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text("select * from alembic_version"))).scalars())
    finally:
        await engine.dispose()


def test_a_service_s_databases_are_copies_of_one_it_migrated(
    postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(databases, "_MIGRATED", weakref.WeakKeyDictionary())  # none made yet
    upgraded, run = [], migrations.upgrade

    def upgrade(script_location: Path, database_url: str) -> None:
        upgraded.append(database_url)
        run(script_location, database_url)

    monkeypatch.setattr(databases.migrations, "upgrade", upgrade)
    first, second = migrated_database(postgres, MIGRATIONS), migrated_database(postgres, MIGRATIONS)
    assert len(upgraded) == 1 and upgraded[0] not in (first, second)  # a third, never used
    assert (
        asyncio.run(applied(first))
        == asyncio.run(applied(second))
        == asyncio.run(applied(upgraded[0]))
        != []
    )
