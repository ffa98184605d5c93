"""A unit of work runs its after-commit callbacks once it has committed, never after a rollback;
it writes the events emitted to the outbox in their order, less those of a savepoint that rolled
back, and the other rows held for the commit with one statement for each kind."""

from uuid import uuid4

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared.db import INBOX, Base, OutboxRecord
from crossgen_shared.unit_of_work import UnitOfWork

from .messaging import fresh_settings, messaging_service
from .test_observability import joined

# Nothing is executed, so the session never connects: no server is needed.
SESSIONS = async_sessionmaker(create_async_engine("postgresql+asyncpg://nobody@nowhere/none"))


async def test_callbacks_run_in_order_after_the_commit_and_once() -> None:
    called: list[str] = []
    async with UnitOfWork(SESSIONS, "test") as uow:
        uow.after_commit(lambda: called.append("first"))
        uow.after_commit(lambda: called.append("second"))
        assert called == []
        await uow.commit()
        assert called == ["first", "second"]
        await uow.commit()
    assert called == ["first", "second"]


async def test_callbacks_of_a_unit_of_work_that_rolls_back_never_run() -> None:
    called: list[str] = []
    with pytest.raises(RuntimeError):
        async with UnitOfWork(SESSIONS, "test") as uow:
            uow.after_commit(lambda: called.append("rolled back"))
            raise RuntimeError("the use case failed")
    assert called == []


async def test_events_reach_the_outbox_in_order_less_a_rolled_back_savepoints(
    postgres: LocalPostgres,
) -> None:
    database = f"test_{uuid4().hex[:12]}"
    postgres.create_database(database)
    engine = create_async_engine(postgres.url(database))
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    woken: list[bool] = []
    emitted: list[str] = []
    async with UnitOfWork(sessions, "test", lambda: woken.append(True)) as uow:
        emitted.append(await uow.emit(joined()))
        uow.memo["read under a lock"] = True
        kept = await uow.session.begin_nested()
        emitted.append(await uow.emit(joined()))
        await kept.commit()
        dropped = await uow.session.begin_nested()
        await uow.emit(joined())
        await dropped.rollback()
        assert uow.memo == {}  # the savepoint's locks went with it
        emitted.append(await uow.emit(joined()))
        assert woken == []
        await uow.commit()
    assert woken == [True]
    async with sessions() as session:
        rows = await session.scalars(select(OutboxRecord.event_id).order_by(OutboxRecord.seq))
        assert list(rows) == emitted
    await engine.dispose()


async def test_the_inbox_claims_any_number_of_ids_with_one_statement(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    """asyncpg prepares each distinct statement once a connection: a statement per batch size
    was prepared anew for most batches. Claimed once each, the repeated one too."""
    service = await messaging_service("test", fresh_settings(postgres, tokens))
    statements: list[str] = []
    event.listen(
        service.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )
    claimed = []
    for ids in (["a"], ["b", "c", "b"], ["a", "c", "d", "e"]):
        async with service.unit_of_work() as uow:
            claimed.append(await uow.claim_all("consumer", ids))
            await uow.commit()
    await service.engine.dispose()
    assert claimed == [{"a"}, {"b", "c"}, {"d", "e"}]
    assert len(set(statements)) == 1


async def test_held_rows_are_inserted_at_the_commit_with_one_statement_for_each_kind(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    """Each kind in one executemany (the outbox's order is the test above's); none inside a
    savepoint, which could take rows held before it along when it rolls back."""
    service = await messaging_service("test", fresh_settings(postgres, tokens))
    executed: list[tuple[str, bool]] = []
    event.listen(
        service.engine.sync_engine,
        "before_cursor_execute",
        lambda *a: executed.append((a[2].split()[2], a[5])),  # table, executemany
    )
    claim = insert(INBOX)
    async with service.unit_of_work() as uow:
        for n in range(3):
            uow.insert_at_commit(claim, {"consumer": "held", "event_id": f"e-{n}"})
            await uow.emit(joined())
        assert executed == []
        savepoint = await uow.session.begin_nested()
        with pytest.raises(RuntimeError):
            await uow.write_held()
        await savepoint.rollback()
        executed.clear()
        await uow.commit()
        assert sorted(executed) == [("inbox", True), ("outbox", True)]
    async with service.sessions() as session:
        held = await session.scalars(select(INBOX.c.event_id).where(INBOX.c.consumer == "held"))
        assert sorted(held) == ["e-0", "e-1", "e-2"]
    await service.engine.dispose()
