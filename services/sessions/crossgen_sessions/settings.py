from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crossgen_sessions.at_risk.rules import Policy
from crossgen_shared.settings import ServiceSettings


class SessionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SESSIONS_")

    pairing_term_days: int = Field(default=180, gt=0, description="A new pairing's planned length")
    stalled_after_days: int = Field(
        default=21, gt=0, description="A pairing with no session held for this long is at risk"
    )
    no_shows_at_risk: int = Field(
        default=2, gt=0, description="This many no-shows in a row put a pairing at risk"
    )
    at_risk_check_interval: float = Field(
        default=300.0, gt=0, description="Seconds between two looks for pairings at risk"
    )

    def at_risk_policy(self) -> Policy:
        return Policy(
            stalled_after=timedelta(days=self.stalled_after_days),
            no_shows_in_a_row=self.no_shows_at_risk,
        )
