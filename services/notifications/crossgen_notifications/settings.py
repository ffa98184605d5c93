from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from crossgen_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_sender: str = "Crossgen <no-reply@crossgen.example>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=10.0, gt=0)
    delivery_poll_interval: float = Field(default=0.5, gt=0)
    delivery_batch_size: int = Field(default=20, ge=1)
    delivery_max_attempts: int = Field(default=8, ge=1)
    # A transient failure is retried after this delay, doubled on each attempt up to the maximum.
    delivery_retry_delay: float = Field(default=30.0, ge=0)
    delivery_retry_max_delay: float = Field(default=3600.0, ge=0)
