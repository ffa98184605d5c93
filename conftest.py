"""Fixtures shared by every test directory: real PostgreSQL (and, for integration, Kafka / SMTP).

Where a Docker engine exists they use testcontainers; otherwise local processes (crossgen_local);
CROSSGEN_POSTGRES_URL / CROSSGEN_KAFKA_BOOTSTRAP point them at external servers instead.
For a service's database use ``crossgen_local.databases.migrated_database(postgres, dir)``.
"""

from collections.abc import Iterator

import pytest

from crossgen_local.databases import migrated_database
from crossgen_local.interrupts import interrupt, take_over
from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer

__all__ = ["migrated_database"]


def pytest_configure(config: pytest.Config) -> None:
    # A run ended by SIGTERM (a CI job's time limit, kill) or SIGHUP (its terminal closed) unwinds
    # as after Ctrl-C, so the fixtures stop the servers they started: the embedded PostgreSQL
    # runs detached, and a run killed outright left it running. Ctrl-C too: a KeyboardInterrupt
    # that a finalizer drops comes again (``interrupts``).
    take_over(interrupt)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres([]) as server:
        yield server


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    """A broker for the module: some modules stop or restart theirs."""
    with LocalKafka() as broker:
        yield broker


@pytest.fixture(scope="session")
def tokens() -> TokenIssuer:
    """Signs bearer tokens the services under test trust (see ``TokenIssuer.service_env``)."""
    return TokenIssuer()
