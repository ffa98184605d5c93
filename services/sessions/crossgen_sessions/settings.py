from pydantic_settings import SettingsConfigDict

from crossgen_shared.settings import ServiceSettings


class SessionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SESSIONS_")
