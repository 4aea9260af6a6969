"""Structured JSON logs carrying the correlation id. Identity numbers are never logged in full.

How (spec §6, §7.2; domain rules §13): the first defence is that no service logs a document, a person or a
request body: log calls name keys, codes and counts (`order_key`, event types), never payloads; the
database engine hides statement parameters from its errors (shared/db.py), so a failed insert does not
echo a row into a log line; contract validation errors are logged by field and message, never with the
input value (shared/batch.py `short_error`).

`mask_personal_data` is the second defence, applied to every message, extra field and traceback. It is a
set of patterns, and a pattern can only catch a number it can recognise:
  - anything shaped like a resident identity number (17 digits and a check digit or X), anywhere;
  - any value labelled as an identity number (`id_number`, `id_no`, `passport`, `身份证`, … followed by
    `=`, `:` or a space, in JSON, a repr or prose), whatever its format: passports and other numbers;
  - the shapes of PRC passports (E or G and 8 digits, E and a letter and 7 digits), anywhere.
Each is cut down to its masked form (`contracts.identifiers.mask_id_number`); and the input a Pydantic
validation error echoes (a whole document, names included) is dropped. What no pattern can catch:
an unlabelled foreign passport or other number of arbitrary shape in free text (it looks like any other
code). That is why the first defence, not this one, is the rule; the end-to-end scan
(tests/e2e/test_personal_data.py) checks the whole mesh's log lines against the numbers it submitted.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone

from contracts.identifiers import mask_id_number

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

# Resident ids: 17 digits and a check character. Not inside a longer run of letters or digits (a
# USCC has letters; an 18-digit run inside a longer number is not an identity number).
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# A value labelled as an identity number, in JSON ("id_number": "E12345678"), a repr (id_number='…'),
# a query string (id_number=…) or prose (passport E12345678). The masked field itself
# (id_number_masked) and the sealed one (id_number_sealed, ciphertext) are left alone.
_LABELLED_ID = re.compile(
    r"(?P<label>\b(?:id_number|id_no|idno|id_num|passport(?:_no|_number)?|identity[ _]number|证件号码?|身份证号?码?)"
    r"(?!_masked|_sealed)[\"']?\s*(?:[:=]\s*|\s)[\"']?)(?=[0-9A-Za-z*-]*\d)(?P<value>[0-9A-Za-z*][0-9A-Za-z*-]{0,31})",
    re.IGNORECASE)
# PRC passports (E12345678, G12345678, EA1234567), wherever they stand.
_PASSPORT = re.compile(r"(?<![0-9A-Za-z])(?:[EG]\d{8}|E[A-Z]\d{7})(?![0-9A-Za-z])")


# The input a Pydantic validation error echoes (`[type=missing, input_value={'name': …}, input_type=dict]`):
# a whole document, names included, when a model-level check fails. Its place is kept, its value dropped.
# A message cut short (`repr(err)[:500]`) may end inside the echo: then everything after `input_value=` goes.
_ECHOED_INPUT = re.compile(r"input_value=(?:.*?, input_type=(\w+)\]|.*\Z)", re.DOTALL)


def mask_personal_data(text: str) -> str:
    """`text` with every identity number the patterns above recognise replaced by its masked form
    (spec §7.2): `… 110101199003070011 …` → `… 1101**********0011 …`, `passport E12345678` →
    `passport *******78`, and the input a validation error echoes left out. Already masked values are left
    as they are."""
    text = _ECHOED_INPUT.sub(lambda m: f"input_value=…, input_type={m.group(1)}]" if m.group(1) else "input_value=…",
                             text)
    text = _LABELLED_ID.sub(lambda m: m.group("label") + mask_id_number(m.group("value")), text)
    text = _RESIDENT_ID.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PASSPORT.sub(lambda m: mask_id_number(m.group(0)), text)


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
