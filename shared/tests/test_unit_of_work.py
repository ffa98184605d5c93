"""A unit of work runs its after-commit callbacks once it has committed, never after a rollback."""

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from crossgen_shared.unit_of_work import UnitOfWork

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
