"""Kafka TLS / SASL from settings, for the FastStream broker and the aiokafka admin client alike."""

import ssl
from typing import Any, Literal

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import BaseModel, SecretStr

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


class KafkaSecurity(BaseModel):
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_pem: str | None = None  # CA bundle as PEM text; None trusts the system store

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.protocol not in ("SSL", "SASL_SSL"):
            return None
        return ssl.create_default_context(cadata=self.ssl_ca_pem)

    def for_broker(self) -> BaseSecurity | None:
        context = self._ssl_context()
        if self.protocol.startswith("SASL"):
            if not (self.sasl_username and self.sasl_password):
                raise ValueError(f"Kafka {self.protocol} needs a SASL username and password")
            return _SASL[self.sasl_mechanism](
                self.sasl_username, self.sasl_password.get_secret_value(), ssl_context=context
            )
        return BaseSecurity(ssl_context=context) if context else None

    def for_client(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients created outside the broker."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if context := self._ssl_context():
            options["ssl_context"] = context
        if self.protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value()
                if self.sasl_password
                else None,
            }
        return options
