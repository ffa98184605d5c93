from datetime import timedelta

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from crossgen_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")

    # Where people reach this service from outside: the base of every unsubscribe link.
    public_url: str = "http://localhost:8000"

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_sender: str = "Crossgen <no-reply@crossgen.example>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False  # upgrade a plain connection (usually port 587)
    smtp_implicit_tls: bool = False  # TLS from the first byte (usually port 465)
    smtp_tls_ca: str | None = None  # CA bundle, PEM text; None trusts the system store
    smtp_timeout: float = Field(default=10.0, gt=0)

    # Chat and webhook URLs must be https on one of these hosts (`*.` matches any subdomain),
    # and must not resolve to a private, loopback or link-local address.
    outbound_allowed_hosts: tuple[str, ...] = (
        "hooks.slack.com",
        "*.webhook.office.com",
        "*.logic.azure.com",
    )
    # For tests and local demos only: plain http, and addresses on this machine or network.
    outbound_allow_http: bool = False
    outbound_allow_private: bool = False
    webhook_timeout: float = Field(default=10.0, gt=0)

    reminder_lead: timedelta = timedelta(hours=24)
    digest_hour: int = Field(default=8, ge=0, le=23)  # in each person's own timezone

    delivery_poll_interval: float = Field(default=0.5, gt=0)
    delivery_concurrency: int = Field(default=2, ge=1)
    # Due messages one loop claims in one transaction and sends at once: fewer transactions per
    # message (two a claim: a claim of 4 cost twice the CPU per email of one of 16), and as many
    # in flight (so "maybe sent" after a crash) as the loops' claims hold. Messages in flight are
    # what a delivery rate needs (rate x time a claim takes): at 200 emails/s on a busy machine,
    # claims of 16 over 8 connections were always full and the emails queued for seconds.
    delivery_batch: int = Field(default=32, ge=1)
    # SMTP connections one replica keeps open at most (as many as it needs: one per email in
    # flight); the claims' emails take turns on them. Lower it for a relay that allows fewer.
    smtp_connections: int = Field(default=32, ge=1)
    # While the relay cannot be reached, emails wait (unclaimed, their attempts not used up) and
    # one loop asks it this often whether it is back.
    smtp_probe_interval: float = Field(default=2.0, gt=0)
    delivery_max_attempts: int = Field(default=8, ge=1)
    # A transient failure is retried after this delay, doubled on each attempt up to the maximum,
    # with jitter so that many messages failing together do not come back together.
    delivery_retry_delay: float = Field(default=30.0, ge=0)
    delivery_retry_max_delay: float = Field(default=3600.0, ge=0)
    # A message claimed this long ago and still not confirmed was being sent when a replica died.
    sending_timeout: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> "NotificationsSettings":
        if self.smtp_starttls and self.smtp_implicit_tls:
            raise ValueError("choose SMTP STARTTLS or implicit TLS, not both")
        # The emails in flight may wait for each other's connections, each for its timeout.
        turns = -(-self.delivery_concurrency * self.delivery_batch // self.smtp_connections)
        if self.sending_timeout <= max(self.smtp_timeout * turns, self.webhook_timeout):
            # Shorter, and a send still in progress would be declared "maybe sent".
            raise ValueError(
                "sending_timeout must exceed the webhook timeout, and the SMTP timeout times"
                f" the turns the emails in flight take on the SMTP connections ({turns})"
            )
        return self
