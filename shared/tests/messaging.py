"""A service of the tests' own on a fresh database holding just the outbox and inbox."""

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic_settings import SettingsConfigDict

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared.db import Base
from crossgen_shared.service import Service
from crossgen_shared.settings import ServiceSettings


def fresh_settings(postgres: LocalPostgres, tokens: TokenIssuer, **extra: Any) -> ServiceSettings:
    """Settings on a database of their own, created empty."""
    database = f"test_{uuid4().hex[:12]}"
    postgres.create_database(database)
    return ServiceSettings(
        database_url=postgres.url(database),
        jwt_issuer=tokens.issuer,
        jwt_public_key=tokens.public_key_pem,
        **extra,
    )


class DemoSettings(ServiceSettings):
    """A service's settings, with a prefix of its own as each service has."""

    model_config = SettingsConfigDict(env_prefix="DEMO_")


def offline_settings(
    kind: type[ServiceSettings] = ServiceSettings, **extra: Any
) -> ServiceSettings:
    """Settings for code that reads them but reaches no database nor identity provider."""
    given: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://unused/db",
        "jwt_issuer": "idp",
        "jwt_public_key": "unused",
    }
    return kind(**(given | extra))


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe is closed


async def messaging_service(name: str, settings: ServiceSettings) -> Service:
    """A service named ``name`` whose database has the outbox and inbox, nothing else."""
    service = Service(name, settings)
    async with service.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    return service


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    """Wait until ``check`` holds; fail the test after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def create_topic(bootstrap: str, name: str, partitions: int = 1, **config: str) -> None:
    """A topic of the test's own, with ``config`` (Kafka's names, dots as underscores)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {key.replace("_", "."): value for key, value in config.items()}
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()
