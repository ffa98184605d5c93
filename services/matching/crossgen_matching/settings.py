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
    proposal_expiry_days: int = Field(
        default=14, ge=1, description="Days a proposal waits for both answers until it expires"
    )
    proposal_expiry_check_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between two looks for expired proposals"
    )
    automatic_enrolment_check_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between two looks for automatic enrolments to start or go on with",
    )
    resolve_interval_hours: float = Field(
        default=24.0, ge=0, description="Hours between two re-solves of every program; 0: never"
    )
    # The HRIS feed is the pipeline's entry: records gathered here go on in batches through
    # every later hop, each batch one transaction, one outbox round and one produce request
    # (benchmarks/README.md, twenty-first session). Later hops do not wait: their consumers,
    # each on its own clock, would see events overtake the ones they refer to.
    hris_batch_wait: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="Seconds the broker may hold the HRIS intake's fetch to gather a batch of"
        " records; 0 takes each as soon as it is there",
    )

    @property
    def erasure_grace(self) -> timedelta:
        return timedelta(days=self.erasure_grace_days)

    @property
    def proposal_expiry(self) -> timedelta:
        return timedelta(days=self.proposal_expiry_days)
