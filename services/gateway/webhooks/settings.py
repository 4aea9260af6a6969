"""The webhooks' settings (environment variables `SW_WEBHOOK_*`, README "Configuration"); kept beside the
webhook code rather than in shared/settings.py, which every service reads."""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.gateway.webhooks.rules import RetrySchedule


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="sw_webhook_", case_sensitive=False, extra="ignore")

    max_per_enterprise: int = Field(default=10, ge=1)  # a bound on fan-out: 10 URLs per event per enterprise
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    read_timeout_seconds: float = Field(default=10.0, gt=0)  # per attempt: a slow receiver's attempt fails
    concurrency: int = Field(default=16, ge=1)  # HTTP requests in flight at once, per gateway process
    per_webhook_concurrency: int = Field(default=4, ge=1)  # ... of them to one webhook (a hanging receiver's share)
    per_enterprise_concurrency: int = Field(default=8, ge=1)  # ... to one enterprise's webhooks, however many
    claim_batch: int = Field(default=64, ge=1)  # deliveries claimed per pass
    poll_seconds: float = Field(default=1.0, gt=0)  # how often the sender looks for due deliveries
    lease_seconds: float = Field(default=60.0, gt=0)  # a claimed delivery's lease (more than one attempt takes)
    backoff_base_seconds: float = Field(default=10.0, gt=0)
    backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    give_up_hours: float = Field(default=24.0, gt=0)
    keep_days: float = Field(default=7.0, gt=0)  # finished deliveries and attempts older than this are pruned
    prune_seconds: float = Field(default=600.0, gt=0)
    prune_chunk: int = Field(default=5000, ge=1)

    @property
    def schedule(self) -> RetrySchedule:
        return RetrySchedule(self.backoff_base_seconds, self.backoff_cap_seconds, timedelta(hours=self.give_up_hours))


@lru_cache
def webhook_settings() -> WebhookSettings:
    return WebhookSettings()
