from pydantic_settings import SettingsConfigDict

from crossgen_shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_")
