"""EmailAddress answers as pydantic's EmailStr does, checking each distinct address once."""

import pytest
from pydantic import EmailStr, TypeAdapter, ValidationError

from crossgen_shared import addresses
from crossgen_shared.addresses import EmailAddress

CACHED = TypeAdapter(EmailAddress)
PYDANTIC = TypeAdapter(EmailStr)


@pytest.mark.parametrize(
    "address",
    ["ana@acme.example", "Ana.Lima@ACME.example", "josé@acme.example", "x@bücher.example"],
)
def test_an_address_is_normalised_as_email_str_does(address: str) -> None:
    assert CACHED.validate_python(address) == PYDANTIC.validate_python(address)


@pytest.mark.parametrize("address", ["", "ana", "ana@", "@acme.example", "a b@acme.example"])
def test_a_refused_address_is_refused_with_email_str_s_message(address: str) -> None:
    with pytest.raises(ValidationError) as ours:
        CACHED.validate_python(address)
    with pytest.raises(ValidationError) as theirs:
        PYDANTIC.validate_python(address)
    assert ours.value.errors()[0]["msg"] == theirs.value.errors()[0]["msg"]


def test_each_distinct_address_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    validate = addresses.validate_email

    def counted(address: str) -> tuple[str, str]:
        checked.append(address)
        return validate(address)

    monkeypatch.setattr(addresses, "validate_email", counted)
    addresses._normalised.cache_clear()
    for _ in range(3):
        CACHED.validate_python("kim@acme.example")
    with pytest.raises(ValidationError):
        CACHED.validate_python("kim@")
    with pytest.raises(ValidationError):
        CACHED.validate_python("kim@")
    assert checked == ["kim@acme.example", "kim@", "kim@"]


def test_the_schema_says_email_as_email_str_s_does() -> None:
    assert CACHED.json_schema() == PYDANTIC.json_schema()
