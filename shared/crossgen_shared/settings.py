"""Settings every service reads from its environment, each under its own prefix (MATCHING_, …)."""

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from crossgen_shared.auth import AuthSettings
from crossgen_shared.kafka_security import KafkaSecurity


class ServiceSettings(BaseSettings):
    database_url: str
    # Seconds a transaction may sit idle before PostgreSQL ends its session (0: as the server is
    # set). A process frozen or hung mid-transaction holds its locks until then, and the replica
    # that took its partitions over, or wants the outbox relay's lock, waits for them.
    database_idle_transaction_timeout: float = Field(default=15.0, ge=0)
    # Connections a process keeps open; as many more are opened while all of them are busy.
    database_pool_size: int = Field(default=10, ge=1)
    # Seconds a unit of work waits for a free connection when every one is busy (a hung or
    # overloaded server): then the database counts as unavailable, like a refused connection.
    database_pool_timeout: float = Field(default=30.0, gt=0)
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca: str | None = None  # CA bundle, PEM text
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    # Bytes of a request body at most: a longer one is answered 413 before it is read. FastAPI
    # parses a body before it checks the caller's token, so without a limit anyone who reaches
    # the port could make a service hold gigabytes (a 10 MB list of numbers took 430 MB).
    http_max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    jwt_issuer: str
    jwt_audience: str = "crossgen"
    jwt_jwks_url: str | None = None
    jwt_public_key: str | None = None
    create_topics: bool = True
    topic_partitions: int = 3
    topic_replication_factor: int = 1
    # Seconds a consumer's handled offsets may wait to be committed together (0: every batch's
    # at once). A crash leaves at most that long's records to come again; the inbox skips them.
    offset_commit_interval: float = Field(default=0.2, ge=0)
    outbox_poll_interval: float = 0.5
    # Seconds the group waits for a consumer that stopped without leaving (kill -9, a frozen
    # process) before its partitions go to the others: most of a killed service's recovery. The
    # broker accepts no less than its group.min.session.timeout.ms, 6 s by default.
    consumer_session_timeout: float = Field(default=6.0, gt=0)
    # Seconds between asking the broker whether each consumer still has its place in the group
    # and takes its records, and how long a topic's partitions may be held by no member, or a
    # consumer hold records it takes none of, before it is restarted (group_watch.py): longer
    # than a rebalance with the broker's session timeout.
    consumer_watch_interval: float = Field(default=10.0, gt=0)
    consumer_stall_after: float = Field(default=30.0, ge=0)
    # Hours an event stays in the outbox once written, to look into what went out; unpublished,
    # it stays however long. Events name people: keep it shorter than the erasure grace period.
    outbox_retention_hours: float = Field(default=24.0, gt=0)
    # Days a handled event's id stays in the inbox, so that a later copy is skipped: longer than
    # the retention of every topic the service reads (0 keeps them forever). See retention.py.
    inbox_retention_days: float = Field(default=45.0, ge=0)
    retention_check_interval: float = Field(default=3600.0, gt=0)  # seconds between sweeps
    shutdown_timeout: float = 20.0
    # json for log shippers (one object a line, with trace ids); text for a person at a terminal.
    log_format: Literal["json", "text"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _a_key_source(self) -> "ServiceSettings":
        if not (self.jwt_jwks_url or self.jwt_public_key):
            raise ValueError("set JWT_JWKS_URL or JWT_PUBLIC_KEY (with the service's prefix)")
        return self

    @property
    def outbox_retention(self) -> timedelta:
        return timedelta(hours=self.outbox_retention_hours)

    @property
    def inbox_retention(self) -> timedelta | None:
        return timedelta(days=self.inbox_retention_days) if self.inbox_retention_days else None

    def env_name(self, field: str) -> str:
        """The environment variable that sets ``field``, with the service's prefix."""
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()

    def kafka_client_options(self) -> dict[str, Any]:
        """What an aiokafka client needs to reach the broker."""
        return {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            **self.kafka_security().for_client(),
        }

    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_ca_pem=self.kafka_ssl_ca,
        )

    def auth(self) -> AuthSettings:
        return AuthSettings(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            jwks_url=self.jwt_jwks_url,
            public_key=self.jwt_public_key,
        )
