"""Logistics' own settings (environment variables named as the fields, upper case; the runtime's are
shared/settings.py). Read once per process."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class LogisticsSettings(BaseSettings):
    """`LOGISTICS_ORDER_GRACE_HOURS`: how long a waybill waits for its order before the anomaly is reported;
    `LOGISTICS_SWEEP_SECONDS`: how often the watchdog looks (unset: a quarter of the grace period, between 1
    and 60 seconds)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    logistics_order_grace_hours: Decimal = Decimal("72")
    logistics_sweep_seconds: float | None = None


@lru_cache(maxsize=1)
def settings() -> LogisticsSettings:
    return LogisticsSettings()
