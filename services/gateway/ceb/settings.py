"""The CEB front door's settings (environment variables `SW_CEB_*`, README "Configuration"); kept beside the
CEB code rather than in shared/settings.py, which every service reads."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="sw_ceb_", case_sensitive=False, extra="ignore")

    # spec §7.5: held records still incomplete after this long are returned (100, DOCUMENT_TIMEOUT). The same
    # default as customs' own wait for an order's documents (services/customs/settings.py).
    document_timeout_hours: Decimal = Field(default=Decimal("72"), gt=0)
    expire_seconds: float = Field(default=60.0, gt=0)  # how often held records are looked at for the timeout
    expire_batch: int = Field(default=500, ge=1)  # ... and how many are returned per pass at most
    receipts_page: int = Field(default=100, ge=1, le=1000)  # receipts per `GET /ceb/v1/receipts` answer


@lru_cache
def ceb_settings() -> CebSettings:
    return CebSettings()
