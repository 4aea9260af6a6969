"""The CEB front door's own settings (environment variables `SW_CEB_*`, README "Configuration"); kept beside
the CEB code, as the webhooks keep theirs, rather than in shared/settings.py, which every service reads.

- `SW_CEB_DOCUMENT_TIMEOUT_HOURS` (default 72, as customs' own wait for an order's documents): held records
  still incomplete after this long are returned (spec §7.5: status 100, DOCUMENT_TIMEOUT).
- `SW_CEB_VERIFY_SIGNATURES` (default false): verify the `ds:Signature` of every CEB message
  (`signatures.verify`); a message whose signature is missing or does not verify is refused. Off, the
  signature is kept as received and not checked (spec §7.5: "verifying it is a setting, off by default").
- `SW_CEB_CERTIFICATES`: a directory of `<code>.pem` files, one per sender, `<code>` being the sender's code
  as it appears in `BaseTransfer/copCode` (usually its 10-character customs code); each file holds the
  sender's signing certificate(s), PEM (more than one while a certificate is being replaced). Required when
  verification is on: verification with no trusted certificate would refuse everyone, so that is refused at
  start instead.
"""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="sw_ceb_", case_sensitive=False, extra="ignore")

    document_timeout_hours: Decimal = Field(default=Decimal("72"), gt=0)
    expire_seconds: float = Field(default=60.0, gt=0)  # how often held records are looked at for the timeout
    expire_batch: int = Field(default=500, ge=1)  # ... and how many are returned per pass at most
    receipts_page: int = Field(default=100, ge=1, le=1000)  # receipts per `GET /ceb/v1/receipts` answer
    verify_signatures: bool = False
    certificates: Path | None = None  # directory of <copCode>.pem

    @model_validator(mode="after")
    def _certificates_when_verifying(self) -> "CebSettings":
        if self.verify_signatures and self.certificates is None:
            raise ValueError("SW_CEB_VERIFY_SIGNATURES is on but SW_CEB_CERTIFICATES names no directory of "
                             "senders' certificates (<copCode>.pem)")
        return self


@lru_cache
def ceb_settings() -> CebSettings:
    return CebSettings()
