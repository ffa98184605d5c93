"""The migrations go down and up again, and 0002 keeps the notifications 0001 had."""

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command

import crossgen_notifications
from crossgen_shared import migrations
from crossgen_shared.db import create_engine

MIGRATIONS = Path(crossgen_notifications.__file__).parent / "migrations"
LINDA = "00000000-0000-0000-0000-000000000001"


async def run(url: str, *statements: str) -> object:
    """Run ``statements`` in one transaction; the last one's first value."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for sql in statements:
                result = await connection.execute(sa.text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def test_down_to_the_first_revision_and_back_keeps_the_log(notifications_db: str) -> None:
    config = migrations.config(MIGRATIONS, notifications_db)
    await asyncio.to_thread(command.downgrade, config, "0001")
    await run(
        notifications_db,
        f"INSERT INTO contacts VALUES ('{LINDA}', 'E-1', gen_random_uuid(), 'Linda',"
        " 'linda@example.com', now())",
        f"INSERT INTO notifications VALUES (gen_random_uuid(), 'e-1', 't', '{LINDA}', 'email',"
        " 'match-proposed', 'linda@example.com', 'Hi', 'Body', 'sent', 1, NULL, now(), now(),"
        " now())",
    )
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await run(notifications_db, "SELECT person_id FROM notifications") == "E-1"
    assert await run(notifications_db, "SELECT locale FROM contacts") == "en"
    assert await run(notifications_db, "SELECT count(*) FROM signing_keys") == 1
