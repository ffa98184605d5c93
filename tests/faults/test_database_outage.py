"""A finding of the fault suite, pinned: while PostgreSQL starts up, shuts down or is out of
connections, asyncpg's errors arrive as plain DBAPIErrors; the consumer must retry them forever
rather than count them against the record and dead-letter it after ``max_attempts``. So must it
while the server refuses the service's credentials or does not have its database, refuses the
service's role a privilege, or cannot read or write its files."""

import asyncpg  # type: ignore[import-untyped]
import pytest

from crossgen_shared.db import unavailable
from crossgen_shared.testing import as_sqlalchemy_raises_it


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.InvalidPasswordError('password authentication failed for user "m"'),
        asyncpg.exceptions.InvalidAuthorizationSpecificationError('role "m" does not exist'),
        asyncpg.exceptions.InvalidCatalogNameError('database "matching" does not exist'),
        asyncpg.exceptions.InsufficientPrivilegeError("permission denied for table inbox"),
        asyncpg.exceptions.PostgresIOError('could not write to file "base/16384/2619"'),
    ],
)
def test_a_database_that_cannot_serve_now_is_retried(error: Exception) -> None:
    assert unavailable(as_sqlalchemy_raises_it(error))


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        # The rest of class 42 is the statement's: a code path that names a wrong column parks
        # its records rather than stalling everything behind them.
        asyncpg.exceptions.UndefinedColumnError('column "nickname" does not exist'),
    ],
)
def test_a_record_the_database_refuses_is_not_retried_as_an_outage(error: Exception) -> None:
    assert not unavailable(as_sqlalchemy_raises_it(error))
