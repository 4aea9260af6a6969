"""FX's own settings (environment variables named as the fields, upper case; the runtime's are
shared/settings.py). Read once per process."""
from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class FxSettings(BaseSettings):
    """`FX_RATES_REFRESH_SECONDS`: how often FX looks for rates loaded by `python -m services.fx.load_rates`
    from another process."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    fx_rates_refresh_seconds: float = 30.0


@lru_cache(maxsize=1)
def settings() -> FxSettings:
    return FxSettings()
