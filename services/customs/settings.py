"""Customs' own settings (environment variables named as the fields, upper case; the runtime's are
shared/settings.py). Read once per process."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class CustomsSettings(BaseSettings):
    """`DOCUMENT_TIMEOUT_HOURS`: how long an order waits for its payment and waybill before it is rejected
    (domain §3); `CUSTOMS_BASE_INSPECTION_RATE` and `CUSTOMS_SELECTION_SALT`: the random inspection selection
    (domain §6); `CUSTOMS_SWEEP_SECONDS`: how often the timeout sweep runs."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    document_timeout_hours: Decimal = Decimal("72")
    customs_base_inspection_rate: Decimal = Decimal("0.03")
    customs_selection_salt: str = ""
    customs_sweep_seconds: float = 5.0


@lru_cache(maxsize=1)
def settings() -> CustomsSettings:
    return CustomsSettings()
