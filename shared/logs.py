"""Structured JSON logs carrying the correlation id. Identity numbers are never logged in full."""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

# 17 digits + check character, or a USCC-shaped 18 characters are left alone; resident ids are masked.
_RESIDENT_ID = re.compile(r"\b(\d{4})\d{10}(\d{3}[\dX])\b")


def mask_personal_data(text: str) -> str:
    return _RESIDENT_ID.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": mask_personal_data(record.getMessage()),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key in ("topic", "event_type", "event_id", "error"):
            if hasattr(record, key):
                entry[key] = mask_personal_data(str(getattr(record, key)))
        if record.exc_info:
            entry["exc"] = mask_personal_data(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn gives its loggers their own plain-text handlers; route them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_log = logging.getLogger(name)
        server_log.handlers[:] = []
        server_log.propagate = True
