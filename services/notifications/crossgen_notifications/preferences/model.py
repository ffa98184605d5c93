"""What a person can choose about their messages, as the HTTP API reads and writes it."""

from datetime import time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from crossgen_notifications.rendering import known_locale
from crossgen_shared import time_zones


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _without_offset(value: time) -> time:
    # Quiet hours follow the person's timezone through daylight saving; a fixed UTC offset
    # cannot, and silently dropping it would shift their quiet hours.
    if value.utcoffset() is not None:
        local = value.replace(tzinfo=None).isoformat("minutes")
        raise ValueError(
            f"quiet hours are local times in the chosen timezone: give {local}, without an offset"
        )
    return value


LocalTime = Annotated[
    time,
    AfterValidator(_without_offset),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$",
            "description": "A local time in the chosen timezone, without an offset",
            "examples": ["22:00"],
        }
    ),
]


class QuietHoursIn(_Strict):
    """No messages from ``start`` to ``end`` local time (22:00 to 07:00 spans midnight)."""

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _a_period(self) -> "QuietHoursIn":
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")
        return self


class EmailIn(_Strict):
    enabled: bool = True


class ChatIn(_Strict):
    kind: Literal["slack", "teams"]
    url: str = Field(max_length=2000, description="The incoming webhook URL of the channel")


class WebhookIn(_Strict):
    url: str = Field(max_length=2000)


class WebhookOut(WebhookIn):
    secret: str = Field(description="Verifies X-Crossgen-Signature on every request")


class PreferencesIn(_Strict):
    locale: str | None = Field(
        None, description="Language of messages (BCP 47, e.g. de, pt-BR); default: the directory's"
    )
    timezone: str = Field("UTC", description="IANA timezone, for times and quiet hours")
    quiet_hours: QuietHoursIn | None = None
    delivery: Literal["immediate", "daily_digest"] = "immediate"
    email: EmailIn = EmailIn()
    chat: ChatIn | None = None
    webhook: WebhookIn | None = None

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str | None) -> str | None:
        if value is not None and not known_locale(value):
            raise ValueError(f"unknown locale {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return time_zones.known(value)


class PreferencesOut(PreferencesIn):
    webhook: WebhookOut | None = None
