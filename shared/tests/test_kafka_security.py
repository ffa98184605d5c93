import pytest
from faststream.security import SASLScram512
from pydantic import SecretStr

from crossgen_shared.kafka_security import KafkaSecurity


def test_plaintext_needs_no_security() -> None:
    assert KafkaSecurity().for_broker() is None
    assert KafkaSecurity().for_client() == {"security_protocol": "PLAINTEXT"}


def test_sasl_over_tls_for_broker_and_clients() -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="crossgen",
        sasl_password=SecretStr("s3cret"),
    )
    assert isinstance(security.for_broker(), SASLScram512)
    client = security.for_client()
    assert client["sasl_mechanism"] == "SCRAM-SHA-512"
    assert client["sasl_plain_password"] == "s3cret"
    assert client["ssl_context"] is not None


def test_sasl_without_credentials_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="SASL username and password"):
        KafkaSecurity(protocol="SASL_PLAINTEXT").for_broker()
