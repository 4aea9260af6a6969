"""Sealing buyers' and payers' identity numbers so that customs alone can read them (spec §6).

Asymmetric: an X25519 sealed box (libsodium's `crypto_box_seal`, through PyNaCl). The gateway holds customs'
PUBLIC key (`SW_CUSTOMS_SEALING_PUBLIC_KEY`) and can seal but never open: a sealed box is encrypted to the
recipient under a throw-away sender key, so not even the process that sealed a number can read it back.
Customs alone holds the PRIVATE key (`SW_CUSTOMS_SEALING_PRIVATE_KEY`). No other service is given either.

A token is the sealed box in URL-safe base64 (32-byte ephemeral public key + ciphertext + 16-byte tag: 48
bytes more than the number). Each sealing draws a new ephemeral key, so one number never gives the same
token twice and tokens cannot be compared; customs compares numbers after opening them.

`pseudonym` is not sealing: it is customs' keyed digest of an opened number (the key of a buyer's annual
totals), under customs' own `SW_CUSTOMS_PSEUDONYM_KEY`, computed by customs only. It is a separate key so that
the sealing keypair can be rotated without changing every buyer's pseudonym (and so their annual totals).

    python -m shared.sealing keygen     # a new keypair, as the two environment variables
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import sys
from functools import lru_cache

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox

from shared.settings import settings


def keyed_box(key: str, purpose: bytes) -> SecretBox:
    """A box (XSalsa20-Poly1305, PyNaCl) for what one process keeps encrypted at rest and reads back itself
    (webhook signing secrets, held CEB records): its key is derived from `key` (the gateway's own,
    SW_GATEWAY_FINGERPRINT_KEY) for `purpose` alone (HMAC-SHA256 with the purpose as label), so a copy of the
    database alone gives nothing away and one purpose's key never opens another's."""
    return SecretBox(hmac.new(key.encode(), purpose, hashlib.sha256).digest())


class SealingKeyMissing(RuntimeError):
    """This process holds no private sealing key: only customs can open sealed identity numbers."""


class CannotUnseal(ValueError):
    """The token is not a sealed box for this private key (another key, an older format, or damaged)."""


def _raw_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError as err:
        raise ValueError(f"{what} is not base64: {err}") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes (base64 of an X25519 key), got {len(raw)}")
    return raw


@lru_cache(maxsize=8)
def _sealer(public_key: str) -> SealedBox:
    return SealedBox(PublicKey(_raw_key(public_key, "the customs sealing public key")))


@lru_cache(maxsize=8)
def _opener(private_key: str) -> SealedBox:
    return SealedBox(PrivateKey(_raw_key(private_key, "the customs sealing private key")))


def seal(id_number: str, public_key: str | None = None) -> str:
    """Seals `id_number` for customs: a URL-safe base64 token only the holder of the private key can open.
    `public_key` (base64) defaults to SW_CUSTOMS_SEALING_PUBLIC_KEY."""
    box = _sealer(public_key or settings().sw_customs_sealing_public_key)
    return base64.urlsafe_b64encode(box.encrypt(id_number.encode())).decode()


def unseal(token: str, private_key: str | None = None) -> str:
    """Opens a token made by `seal`. `private_key` (base64) defaults to the one this process holds
    (Settings.customs_sealing_private_key). Raises SealingKeyMissing when it holds none, CannotUnseal when
    the token is not a sealed box for that key."""
    key = private_key or settings().customs_sealing_private_key()
    if not key:
        raise SealingKeyMissing("no SW_CUSTOMS_SEALING_PRIVATE_KEY: this process cannot open identity numbers")
    try:
        return _opener(key).decrypt(base64.urlsafe_b64decode(token.encode())).decode()
    except (CryptoError, ValueError, TypeError) as err:
        raise CannotUnseal(f"not a sealed identity number for this key: {type(err).__name__}") from None


def pseudonym(id_number: str, secret: str | None = None) -> str:
    """A stable keyed digest (HMAC-SHA256, hex) of an identity number: lets customs key a buyer's annual
    total without storing the number. `secret` defaults to SW_CUSTOMS_PSEUDONYM_KEY (customs only)."""
    key = (secret or settings().sw_customs_pseudonym_key).encode()
    return hmac.new(key, id_number.encode(), hashlib.sha256).hexdigest()


def keygen() -> tuple[str, str]:
    """A new sealing keypair: (public, private), each base64 of 32 bytes."""
    private = PrivateKey.generate()
    return base64.b64encode(bytes(private.public_key)).decode(), base64.b64encode(bytes(private)).decode()


def main(argv: list[str]) -> int:
    if argv[1:] != ["keygen"]:
        print("usage: python -m shared.sealing keygen", file=sys.stderr)
        return 2
    public, private = keygen()
    print("# the gateway (seals):\nSW_CUSTOMS_SEALING_PUBLIC_KEY=" + public)
    print("# customs alone (opens):\nSW_CUSTOMS_SEALING_PRIVATE_KEY=" + private)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
