"""Sealing buyers' identity numbers so that customs alone can read them (spec §6).

Fernet (AES-128-CBC + HMAC-SHA256, from the `cryptography` package) under a key derived from
SW_CUSTOMS_ID_KEY, which only the gateway (to seal) and customs (to open) are given."""
from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet

from shared.settings import settings


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def seal(id_number: str, secret: str | None = None) -> str:
    return _fernet(secret or settings().sw_customs_id_key).encrypt(id_number.encode()).decode()


def unseal(token: str, secret: str | None = None) -> str:
    return _fernet(secret or settings().sw_customs_id_key).decrypt(token.encode()).decode()


def pseudonym(id_number: str, secret: str | None = None) -> str:
    """A stable keyed digest of an identity number: lets customs key a buyer's annual total without storing the number."""
    key = (secret or settings().sw_customs_id_key).encode()
    return hmac.new(key, id_number.encode(), hashlib.sha256).hexdigest()
