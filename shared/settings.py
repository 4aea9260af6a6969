"""Settings from the environment (spec §1). One object per process, read once."""
from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.reference import PROJECT_ROOT

DEFAULT_ADMIN_TOKEN = "dev-admin-token"
DEFAULT_CUSTOMS_ID_KEY = "dev-customs-id-key"


class Settings(BaseSettings):
    """Every variable is the field's name in upper case (README, Configuration).

    The order event's two major versions (contracts/v2/events.py):
    - `SW_ORDER_V1_UNTIL` (`sw_order_v1_until`): the last day, China time, of the deprecation period of
      `sw.order.submitted.v1`. Until the end of that day the gateway publishes every order event on v1
      as well as on v2; from the next day on, on v2 only. Empty: v1 is published for as long as the
      gateway runs. Default 2027-06-30.
    - `SW_ORDER_V2_ENABLED` (`sw_order_v2_enabled`): publish `sw.order.submitted.v2`. Our own agencies read
      v2 only, so turning it off starves them; it is the way back for a mesh whose readers are all still
      on v1, and while it is off the gateway publishes v1 whatever `SW_ORDER_V1_UNTIL` says (an order is
      never published on no topic at all).
    """

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    sw_env: str = "development"
    sw_admin_token: str = DEFAULT_ADMIN_TOKEN
    sw_gateway_url: str = "http://127.0.0.1:8000"
    sw_run_dir: Path = PROJECT_ROOT / ".run"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    sw_topic_partitions: int = 4
    # The key that seals buyers' identity numbers for customs (spec §6); only gateway and customs hold it.
    sw_customs_id_key: str = DEFAULT_CUSTOMS_ID_KEY
    # How many records one consumer batch takes, and how long it waits to fill one.
    sw_batch_max_records: int = 500
    sw_batch_wait_ms: int = 100
    sw_handler_retries: int = 3
    document_timeout_hours: Decimal = Decimal("72")
    customs_base_inspection_rate: Decimal = Decimal("0.03")
    customs_selection_salt: str = ""
    customs_sweep_seconds: float = 5.0
    logistics_order_grace_hours: Decimal = Decimal("72")
    # Unset: a quarter of the grace period, between 1 and 60 seconds.
    logistics_sweep_seconds: float | None = None
    # How often FX looks for rates loaded by `python -m services.fx.load_rates` from another process.
    fx_rates_refresh_seconds: float = 30.0
    log_level: str = Field(default="INFO")
    sw_order_v1_until: date | None = date(2027, 6, 30)
    sw_order_v2_enabled: bool = True
    # Group commit (gateway): single-document submissions arriving within this many milliseconds share one
    # transaction (one fsync) of at most `sw_group_commit_max` documents. 0 gives every request its own.
    sw_group_commit_ms: float = Field(default=3.0, ge=0)
    sw_group_commit_max: int = Field(default=200, ge=1)
    # How long the gateway trusts its memory of an API key: a revoked or changed key stops working within
    # `sw_api_key_cache_seconds`; an unknown key is answered 401 from memory for the (shorter) negative TTL.
    sw_api_key_cache_seconds: float = Field(default=5.0, ge=0)
    sw_api_key_negative_cache_seconds: float = Field(default=1.0, ge=0)
    # Per-key rate limit of the gateway (spec §7.2), per gateway process: this many requests a second on
    # average over a moving window of `sw_rate_limit_window_seconds` (so a full batch of 500 fits); a batch
    # counts one per document. 0 switches the limit off.
    sw_rate_limit_per_second: float = Field(default=200.0, ge=0)
    sw_rate_limit_window_seconds: int = Field(default=5, ge=1)

    @field_validator("sw_order_v1_until", mode="before")
    @classmethod
    def _empty_means_no_end(cls, value: object) -> object:
        # An empty variable is how a deployment says "no end date" (compose files cannot unset a default).
        return None if isinstance(value, str) and not value.strip() else value

    def database_url(self, service: str) -> str:
        configured = os.environ.get(f"{service.upper()}_DATABASE_URL")
        if configured:
            return configured
        self.sw_run_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{self.sw_run_dir / (service + '.db')}"

    def refuse_unsafe_production_defaults(self) -> None:
        if self.sw_env == "production":
            if self.sw_admin_token == DEFAULT_ADMIN_TOKEN:
                raise SystemExit("SW_ADMIN_TOKEN must be set to a secret value when SW_ENV=production")
            if self.sw_customs_id_key == DEFAULT_CUSTOMS_ID_KEY:
                raise SystemExit("SW_CUSTOMS_ID_KEY must be set to a secret value when SW_ENV=production")


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
