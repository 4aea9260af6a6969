"""The envelope every event travels in (spec §6)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field

from contracts.types import Timestamp


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = Field(ge=1, le=2**31 - 1)
    occurred_at: Timestamp = Field(default_factory=lambda: datetime.now(timezone.utc))
    source: str
    correlation_id: str
    payload: dict
