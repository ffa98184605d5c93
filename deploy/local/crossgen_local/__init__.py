"""Real Kafka, PostgreSQL, SMTP and service processes for tests and demos, Docker or not.

Environment:
  CROSSGEN_KAFKA_BOOTSTRAP  use this broker instead of starting one
  CROSSGEN_POSTGRES_URL     admin URL of a server to use instead of starting one
  CROSSGEN_DOCKER=0         never use Docker even if an engine answers
  CROSSGEN_CACHE            download cache (default $XDG_CACHE_HOME/crossgen or ~/.cache/crossgen)
"""

from ._common import docker_available, free_port
from .infra import LocalInfra
from .kafka import KafkaStartError, LocalKafka
from .postgres import LocalPostgres
from .processes import ServiceProcess, ServiceStartError
from .smtp import ReceivedMail, SmtpSink

__all__ = [
    "KafkaStartError",
    "LocalInfra",
    "LocalKafka",
    "LocalPostgres",
    "ReceivedMail",
    "ServiceProcess",
    "ServiceStartError",
    "SmtpSink",
    "docker_available",
    "free_port",
]
