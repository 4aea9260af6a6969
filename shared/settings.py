"""Settings from the environment (spec §1). One object per process, read once."""
from __future__ import annotations

import base64
import os
from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.reference import PROJECT_ROOT

DEFAULT_ADMIN_TOKEN = "dev-admin-token"
# The development sealing keypair (X25519, base64 of the raw 32 bytes; shared/sealing.py). Its private half
# is public (it is in this file), so it is refused outside development, like every default secret here.
# `python -m shared.sealing keygen` makes a real pair.
DEV_CUSTOMS_SEALING_PUBLIC_KEY = "uSKrJcg6WTZ03FF0PJnC4wY4lKNBFJ7+s8vZZi1WTXY="
DEV_CUSTOMS_SEALING_PRIVATE_KEY = "j1Ntaun8O747PhxnfzKEH379i1vjHMn1TfHne2LAv2E="
DEFAULT_CUSTOMS_PSEUDONYM_KEY = "dev-customs-pseudonym-key"
DEFAULT_GATEWAY_FINGERPRINT_KEY = "dev-gateway-fingerprint-key"
# SW_ENV values under which the development defaults above are accepted. Any other value (production,
# staging, prod, a typo) is treated as a deployment that must bring its own secrets: a deployment that
# forgets SW_ENV entirely runs as development, so docker-compose.yml sets it to production by default.
DEVELOPMENT_ENVS = frozenset({"development", "dev", "test", "testing", "local"})


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
    # Kafka topics created by shared/topics_admin.py: replication factor and min.insync.replicas (1 and 1
    # on the single local broker; 3 and 2 on a cluster, so an acks=all write survives the loss of a broker).
    sw_topic_replication_factor: int = Field(default=1, ge=1)
    sw_topic_min_insync_replicas: int = Field(default=1, ge=1)
    # How every Kafka client of this process authenticates (shared/kafka.py): PLAINTEXT locally; on a
    # secured broker SASL_PLAINTEXT or SASL_SSL with SCRAM, one principal per service (docs/security.md).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""  # SASL_SSL / SSL: the CA bundle of the broker's certificate (empty: system CAs)
    # Sealing of buyers' and payers' identity numbers for customs (spec §6, shared/sealing.py): the gateway
    # holds customs' public key and can only seal; customs alone holds the private key and can open.
    sw_customs_sealing_public_key: str = DEV_CUSTOMS_SEALING_PUBLIC_KEY
    # Empty: the development private key in a development SW_ENV, no key at all otherwise.
    sw_customs_sealing_private_key: str = ""
    # Customs' own key for the pseudonym of a buyer (the key of the annual totals); customs only.
    sw_customs_pseudonym_key: str = DEFAULT_CUSTOMS_PSEUDONYM_KEY
    # The gateway's key for document fingerprints (idempotency): keyed, so that a stored fingerprint cannot
    # be reversed into the identity number it covers by trying every number. Must stay the same over time.
    sw_gateway_fingerprint_key: str = DEFAULT_GATEWAY_FINGERPRINT_KEY
    # How many records one consumer batch takes, and how long it waits to fill one.
    sw_batch_max_records: int = 500
    sw_batch_wait_ms: int = 100
    sw_handler_retries: int = 3
    # Pruning (shared/outbox.py, Pruner): published outbox rows are kept this many minutes, inbox rows this
    # many hours (at least the topics' retention, so a redelivery is still recognised), deleted in chunks.
    sw_outbox_keep_minutes: float = Field(default=10.0, ge=0)
    sw_inbox_keep_hours: float = Field(default=168.0, ge=0)
    sw_prune_chunk: int = Field(default=2000, ge=1)
    # An agency's own settings are in its folder (services/<agency>/settings.py), not here.
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

    @field_validator("sw_customs_sealing_public_key", "sw_customs_sealing_private_key")
    @classmethod
    def _x25519_key(cls, value: str, info: ValidationInfo) -> str:
        # A sealing key is base64 of 32 raw bytes (python -m shared.sealing keygen); a wrong one is refused at
        # start rather than at the first identity number. Empty private key: none (see the field).
        value = value.strip()
        if value or info.field_name == "sw_customs_sealing_public_key":
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError("a sealing key is the base64 of 32 bytes (python -m shared.sealing keygen)")
        return value

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> "Settings":
        # A topic whose min.insync.replicas exceeds its replicas refuses every acks=all write.
        if self.sw_topic_min_insync_replicas > self.sw_topic_replication_factor:
            raise ValueError("SW_TOPIC_MIN_INSYNC_REPLICAS must not exceed SW_TOPIC_REPLICATION_FACTOR")
        return self

    def database_url(self, service: str) -> str:
        configured = os.environ.get(f"{service.upper()}_DATABASE_URL")
        if configured:
            return configured
        self.sw_run_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{self.sw_run_dir / (service + '.db')}"

    @property
    def is_development(self) -> bool:
        """True when SW_ENV names a development environment (DEVELOPMENT_ENVS, case and spaces ignored)."""
        return self.sw_env.strip().lower() in DEVELOPMENT_ENVS

    def customs_sealing_private_key(self) -> str | None:
        """The private sealing key this process holds: the configured one, else the development key in a
        development SW_ENV, else None (this process cannot open sealed identity numbers)."""
        if self.sw_customs_sealing_private_key:
            return self.sw_customs_sealing_private_key
        return DEV_CUSTOMS_SEALING_PRIVATE_KEY if self.is_development else None

    def unsafe_defaults(self, service: str | None = None) -> list[str]:
        """What `service` would run with that only a development environment may: default secrets, and a
        key held by a service that must not hold it. Empty in a development SW_ENV. One message a problem."""
        if self.is_development:
            return []
        problems = []
        where = f"SW_ENV={self.sw_env!r} is not a development environment ({', '.join(sorted(DEVELOPMENT_ENVS))})"
        if self.sw_admin_token == DEFAULT_ADMIN_TOKEN or not self.sw_admin_token.strip():
            problems.append(f"SW_ADMIN_TOKEN must be set to a secret value: {where}")
        if service == "gateway" and self.sw_customs_sealing_public_key == DEV_CUSTOMS_SEALING_PUBLIC_KEY:
            problems.append("SW_CUSTOMS_SEALING_PUBLIC_KEY must be customs' own public key (python -m shared.sealing "
                            f"keygen), not the development key whose private half is published: {where}")
        if service == "gateway" and self.sw_gateway_fingerprint_key in ("", DEFAULT_GATEWAY_FINGERPRINT_KEY):
            problems.append(f"SW_GATEWAY_FINGERPRINT_KEY must be set to a secret value: {where}")
        if service == "customs":
            if self.sw_customs_sealing_private_key in ("", DEV_CUSTOMS_SEALING_PRIVATE_KEY):
                problems.append(f"SW_CUSTOMS_SEALING_PRIVATE_KEY must be set to customs' own private key: {where}")
            if self.sw_customs_pseudonym_key in ("", DEFAULT_CUSTOMS_PSEUDONYM_KEY):
                problems.append(f"SW_CUSTOMS_PSEUDONYM_KEY must be set to a secret value: {where}")
        elif service is not None and self.sw_customs_sealing_private_key:
            problems.append(f"SW_CUSTOMS_SEALING_PRIVATE_KEY is given to {service}: only customs may hold it")
        if self.kafka_security_protocol.upper().startswith("SASL") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            problems.append("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set with "
                            f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}")
        return problems

    def refuse_unsafe_production_defaults(self, service: str | None = None) -> None:
        """Stop the process (SystemExit naming every problem) when `unsafe_defaults(service)` finds any."""
        problems = self.unsafe_defaults(service)
        if problems:
            raise SystemExit(f"{service or 'service'} refuses to start:\n  " + "\n  ".join(problems))


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
