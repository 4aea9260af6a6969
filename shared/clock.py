"""Time as the single window counts it: instants in UTC; calendar days, months, quarters and years (the
annual limit, rate days, tax quarters) in China time."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def china_date(at: datetime) -> date:
    return at.astimezone(CHINA).date()
