"""What a command says when Kafka or the database cannot be used: where it looked, what was
wrong, and the setting that says where to look."""

from sqlalchemy import make_url

from crossgen_shared.db import reason
from crossgen_shared.settings import ServiceSettings


def kafka_not_answering(settings: ServiceSettings, meanwhile: str = "") -> str:
    return (
        f"Kafka at {settings.kafka_bootstrap_servers} does not answer{meanwhile}. Is the broker "
        f"up? {settings.env_name('kafka_bootstrap_servers')} says where it is."
    )


def database_unusable(settings: ServiceSettings, failed: BaseException) -> str:
    """The database is down or refuses the service; the password hidden."""
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    return (
        f"PostgreSQL at {where} cannot be used: {reason(failed)}. "
        f"{settings.env_name('database_url')} says where it is and as whom."
    )
