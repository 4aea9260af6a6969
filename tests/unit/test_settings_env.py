"""Settings per agency (services/<agency>/settings.py) beside the runtime's (shared/settings.py): every
environment variable a deployment set before the split still configures the same thing, and no variable is
read by two classes."""
from __future__ import annotations

from decimal import Decimal

from services.customs.settings import CustomsSettings
from services.fx.settings import FxSettings
from services.logistics.settings import LogisticsSettings
from shared.settings import Settings

CLASSES = (Settings, CustomsSettings, LogisticsSettings, FxSettings)

# Every variable shared/settings.py read before the agencies' settings moved to their folders (commit 342c57f).
BEFORE = {
    "CUSTOMS_BASE_INSPECTION_RATE", "CUSTOMS_SELECTION_SALT", "CUSTOMS_SWEEP_SECONDS", "DOCUMENT_TIMEOUT_HOURS",
    "FX_RATES_REFRESH_SECONDS", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_PASSWORD",
    "KAFKA_SASL_USERNAME", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SSL_CAFILE", "LOGISTICS_ORDER_GRACE_HOURS",
    "LOGISTICS_SWEEP_SECONDS", "LOG_LEVEL", "SW_ADMIN_TOKEN", "SW_API_KEY_CACHE_SECONDS",
    "SW_API_KEY_NEGATIVE_CACHE_SECONDS", "SW_BATCH_MAX_RECORDS", "SW_BATCH_WAIT_MS", "SW_CUSTOMS_PSEUDONYM_KEY",
    "SW_CUSTOMS_SEALING_PRIVATE_KEY", "SW_CUSTOMS_SEALING_PUBLIC_KEY", "SW_ENV", "SW_GATEWAY_FINGERPRINT_KEY",
    "SW_GATEWAY_URL", "SW_GROUP_COMMIT_MAX", "SW_GROUP_COMMIT_MS", "SW_HANDLER_RETRIES", "SW_INBOX_KEEP_HOURS",
    "SW_ORDER_V1_UNTIL", "SW_ORDER_V2_ENABLED", "SW_OUTBOX_KEEP_MINUTES", "SW_PRUNE_CHUNK",
    "SW_RATE_LIMIT_PER_SECOND", "SW_RATE_LIMIT_WINDOW_SECONDS", "SW_RUN_DIR", "SW_TOPIC_MIN_INSYNC_REPLICAS",
    "SW_TOPIC_PARTITIONS", "SW_TOPIC_REPLICATION_FACTOR",
}


def variables(cls) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return {(prefix + name).upper() for name in cls.model_fields}


def test_every_variable_of_before_is_read_by_exactly_one_class():
    read = [v for cls in CLASSES for v in variables(cls)]
    assert len(read) == len(set(read))
    assert set(read) >= BEFORE


def test_an_agency_variable_reaches_its_agency(monkeypatch):
    monkeypatch.setenv("DOCUMENT_TIMEOUT_HOURS", "0.01")
    monkeypatch.setenv("customs_selection_salt", "pepper")  # case ignored, as before
    monkeypatch.setenv("LOGISTICS_SWEEP_SECONDS", "2.5")
    monkeypatch.setenv("FX_RATES_REFRESH_SECONDS", "7")
    assert CustomsSettings().document_timeout_hours == Decimal("0.01")
    assert CustomsSettings().customs_selection_salt == "pepper"
    assert LogisticsSettings().logistics_sweep_seconds == 2.5
    assert FxSettings().fx_rates_refresh_seconds == 7.0
