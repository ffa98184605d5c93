"""0003 gives plain skill names the middle level, and going down turns them back into names;
0006 lets existing programs enrol as before; 0007 gives the directory's employees no skills or
interests until their HR system sends some; 0008 lets existing programs take any skill name;
0009 starts every program at revision 0, which its triggers then move."""

import asyncio

import sqlalchemy as sa
from alembic import command

from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_shared import migrations
from crossgen_shared.db import create_engine

from .conftest import MIGRATIONS

PROGRAM = "00000000-0000-0000-0000-000000000001"


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


async def test_skills_get_levels_and_lose_them_again(postgres: LocalPostgres) -> None:
    url = await asyncio.to_thread(migrated_database, postgres, MIGRATIONS)
    config = migrations.config(MIGRATIONS, url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    await run(
        url,
        f"INSERT INTO programs VALUES ('{PROGRAM}', 'Digital', now())",
        f"INSERT INTO participants (id, program_id, person_id, role, display_name, email, skills,"
        f" capacity, status, joined_at) VALUES (gen_random_uuid(), '{PROGRAM}', 'E-1', 'learner',"
        """ 'Lea', 'lea@example.com', '["tiktok", "ai tools"]', 1, 'active', now())""",
        "INSERT INTO employees (employee_number, active, languages, source, source_timestamp,"
        " created_at, updated_at) VALUES ('E-1', true, '[]', 'csv', now(), now(), now())",
    )
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await run(url, "SELECT skills FROM participants") == {"tiktok": 3, "ai tools": 3}
    assert await run(url, "SELECT languages FROM participants") == ["en"]
    # 0006: an existing program admits anyone who enrols, as before.
    assert await run(url, "SELECT enrolment FROM programs") == "self"
    assert await run(url, "SELECT eligibility FROM programs") is None
    # 0007: nothing known of an employee's skills or interests yet.
    assert await run(url, "SELECT skills FROM employees") == []
    assert await run(url, "SELECT interests FROM employees") == []
    # 0008: no skill catalogue, so any skill name, as before.
    assert await run(url, "SELECT skill_catalogue FROM programs") is None
    # 0009: revision 0, moved by a change of what matching reads (here the program's weights).
    assert await run(url, "SELECT revision FROM programs") == 0
    moved = await run(
        url, """UPDATE programs SET weights = '{"skills": 1}'""", "SELECT revision FROM programs"
    )
    assert moved != 0
    await asyncio.to_thread(command.downgrade, config, "0002")
    assert await run(url, "SELECT skills FROM participants") == ["ai tools", "tiktok"]
