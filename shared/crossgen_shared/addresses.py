"""Email addresses, checked as pydantic's ``EmailStr`` checks them, each distinct one once.

One address is checked several times on its way through a service: matching reads it from the
HRIS record, puts it in a participant-joined event, and decodes that event again for the join.
The check (email-validator's syntax and IDNA rules) is a pure function of the text and costs more
than the rest of the field's validation, so its answers are kept; a refused address is not kept
and is refused again, with the same message.
"""

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema
from pydantic.networks import validate_email


@lru_cache(maxsize=4096)
def _normalised(address: str) -> str:
    return validate_email(address)[1]


EmailAddress = Annotated[
    str, AfterValidator(_normalised), WithJsonSchema({"type": "string", "format": "email"})
]
