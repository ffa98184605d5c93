from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crossgen_shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_")

    erasure_grace_days: int = Field(
        default=30, ge=0, description="Days after leaving the company until a person is erased"
    )
    erasure_check_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between two looks for people due for erasure"
    )

    @property
    def erasure_grace(self) -> timedelta:
        return timedelta(days=self.erasure_grace_days)
