from crossgen_shared.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_")
