"""Webhooks as pure functions (spec §7.3): signatures, the URL policy, the retry schedule, who is told.

Nothing here does I/O: resolving a host name is the caller's (it passes the addresses it resolved), and
the random part of the backoff is an argument, so every rule is tested as a plain function
(tests/unit/test_webhook_rules.py)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from nacl.secret import SecretBox

from shared.sealing import keyed_box

ORDER_STATUS_CHANGED = "order.status_changed"
SIGNATURE_HEADER = "Signature"
# Namespace of delivery ids: uuid5(namespace, "<event id>:<webhook id>"), so a redelivered event makes the
# same id (and the insert of its delivery is a no-op) and retries of a delivery carry the id it was born with.
DELIVERY_NAMESPACE = uuid.UUID("6b0f3c52-58a1-4d0e-9a53-7f9e0c2d4b11")


# --- identities and secrets ---------------------------------------------------------------------


def new_webhook_id() -> str:
    """A webhook's public id: random, so it tells nothing about its owner or how many webhooks exist."""
    return "wh_" + secrets.token_hex(12)


def new_secret() -> str:
    """A signing secret: 192 random bits, as printable text (`whsec_` + 48 hex digits)."""
    return "whsec_" + secrets.token_hex(24)


def delivery_id(event_id: str, webhook_id: str) -> str:
    """The delivery id of event `event_id` to webhook `webhook_id`: a UUID derived from both, the same for
    every copy of the event (Kafka redelivery, a replay), so a webhook gets one delivery per event."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}:{webhook_id}"))


def secret_box(gateway_key: str) -> SecretBox:
    """The box that keeps signing secrets encrypted at rest (XSalsa20-Poly1305, PyNaCl): its key is derived
    from the gateway's own key (SW_GATEWAY_FINGERPRINT_KEY) for this purpose alone (HMAC-SHA256 with a label),
    so a copy of the database alone does not give away the secrets."""
    return keyed_box(gateway_key, b"single-window webhook secrets v1")


def seal_secret(box: SecretBox, secret: str) -> str:
    """`secret` encrypted for the `webhooks.secret` column (URL-safe base64 of nonce + ciphertext)."""
    return base64.urlsafe_b64encode(box.encrypt(secret.encode())).decode()


def open_secret(box: SecretBox, sealed: str) -> str:
    """The secret `seal_secret` sealed; raises nacl.exceptions.CryptoError under another key."""
    return box.decrypt(base64.urlsafe_b64decode(sealed.encode())).decode()


# --- signatures ---------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` (the body's exact bytes) under `secret` (spec §7.3)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The `Signature` header's value: `t=<unix seconds>,v1=<hex>`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (docs/webhooks.md): the header's `t` is within `tolerance` seconds of `now`
    (a replayed old request is refused) and one of its `v1` values is the signature of `t.body`; compared in
    constant time. False for a header that does not parse."""
    try:
        parts = [p.split("=", 1) for p in header.split(",")]
        timestamp = int(next(v for k, v in parts if k.strip() == "t"))
        candidates = [v.strip() for k, v in parts if k.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


def delivery_body(delivery: str, occurred_at: datetime, view: dict[str, Any],
                  event_type: str = ORDER_STATUS_CHANGED) -> str:
    """The body of a delivery (spec §7.3): `{"delivery_id", "type", "occurred_at", "data"}`, as the exact
    text sent on every attempt (the signature covers these bytes)."""
    return json.dumps({"delivery_id": delivery, "type": event_type, "occurred_at": occurred_at.isoformat(),
                       "data": view}, separators=(",", ":"), ensure_ascii=False, default=str)


# --- the URL policy -------------------------------------------------------------------------------


def url_problem(url: str, production: bool) -> str | None:
    """What is wrong with `url` as a webhook address (None: nothing, before its host is resolved). Any
    absolute http(s) URL with a host in development; in production https only, and no user name or
    password in it (they would be sent to whoever the host is and shown in every log)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        return f"not a URL: {err}"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        # urlsplit silently drops tabs and newlines and the HTTP client refuses them: the URL kept must be
        # the one checked and the one called, so it is refused here rather than failing every attempt.
        return "a URL may not contain a space or control character (percent-encode it)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an absolute http or https URL"
    if production and parts.scheme != "https":
        return "only https URLs are accepted in production"
    if parts.username is not None or parts.password is not None:
        return "a URL with a user name or password is not accepted: authenticate by the signature"
    if parts.fragment:
        return "a URL with a fragment (#...) is not accepted"
    if port == 0:
        return "port 0 is not a port"
    return None


def endpoint(url: str) -> tuple[str, str, int, str, str]:
    """What makes two webhook URLs one receiving endpoint: scheme and host without case, the port (the
    scheme's default when none is given), the path (`/` when empty) and the query, as written."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or "").rstrip(".").lower(), parts.port or (443 if scheme == "https" else 80),
            parts.path or "/", parts.query)


def host_and_port(url: str) -> tuple[str, int]:
    """The host to resolve and the port to connect to (the scheme's default when none is given)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


# NAT64 (RFC 6052): a NAT64 gateway on the path turns an address of the well-known prefix into the IPv4
# address in its last 32 bits (64:ff9b::a9fe:a9fe is 169.254.169.254), so it is judged by that address. The
# local-use prefix (RFC 8215) maps as its operator chose: never a public address of its own.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
# IPv4-compatible addresses (::a.b.c.d, deprecated by RFC 4291 section 2.5.5.1): no public host has one.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# IPv4-translated addresses (SIIT, RFC 2765): a translator turns them into their last 32 bits.
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# Not globally reachable, and missing from some Pythons' tables (ipaddress.is_global): site-local
# (deprecated, RFC 3879), documentation (RFC 9637), SRv6 SIDs (RFC 9602).
NOT_GLOBAL_V6 = tuple(ipaddress.ip_network(n) for n in ("fec0::/10", "3fff::/20", "5f00::/16"))


def address_problem(addresses: Iterable[str]) -> str | None:
    """Why a host resolving to `addresses` may not be called in production (None: every address is public).
    Every address must be public: loopback, private (RFC 1918, unique local), link-local (cloud metadata at
    169.254.169.254), multicast, reserved and unspecified addresses are refused, and IPv6 forms of an IPv4
    address (mapped, translated, 6to4, Teredo, NAT64's well-known prefix) are judged by that IPv4 address;
    NAT64's local-use prefix, the deprecated IPv4-compatible form and site-local, RFC 9637 documentation and
    SRv6 prefixes are refused. No address at all is refused too."""
    addresses = list(addresses)
    if not addresses:
        return "the host resolves to no address"
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 scope id (fe80::1%eth0) goes
        except ValueError:
            return f"{text} is not an IP address"
        if isinstance(address, ipaddress.IPv6Address):
            if address in NAT64_LOCAL_USE or address in IPV4_COMPATIBLE or any(address in n for n in NOT_GLOBAL_V6):
                return f"the host resolves to {text}, which is not a public address"
            embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
            if address in NAT64_WELL_KNOWN or address in IPV4_TRANSLATED:
                embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            if embedded is not None:
                address = embedded
        if not address.is_global or address.is_multicast:
            return f"the host resolves to {text}, which is not a public address"
    return None


# --- retries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrySchedule:
    """Exponential backoff with jitter: after attempt n (1, 2, ...) failed, the next one waits a random time
    between half and all of `min(cap, base * 2**(n-1))` seconds ("equal jitter": receivers that failed
    together do not come back together, and no wait is shorter than half its step). Given up (`failed`)
    once `give_up_after` has passed since the delivery was created. Defaults: 10 s, 20 s, 40 s, ... up to
    1 hour between attempts (45 minutes on average), for 24 hours: about 40 attempts."""

    base: float = 10.0
    cap: float = 3600.0
    give_up_after: timedelta = timedelta(hours=24)

    def delay(self, attempt: int, jitter: float) -> timedelta:
        """The wait after failed attempt number `attempt` (1-based); `jitter` in [0, 1) picks within the step."""
        step = min(self.cap, self.base * 2 ** min(max(attempt - 1, 0), 62))
        return timedelta(seconds=step * (0.5 + 0.5 * jitter))

    def next_attempt(self, created_at: datetime, now: datetime, attempt: int, jitter: float) -> datetime | None:
        """When to try again after failed attempt `attempt` at `now`; None: give up (24 hours have passed
        since `created_at`, or the next try would come after that: a last try at the limit is kept)."""
        deadline = created_at + self.give_up_after
        if now >= deadline:
            return None
        return min(now + self.delay(attempt, jitter), deadline)


def succeeded(status_code: int | None) -> bool:
    """A 2xx answer delivers; anything else (3xx included: redirects are not followed) is retried."""
    return status_code is not None and 200 <= status_code < 300


# --- who is told ----------------------------------------------------------------------------------


def readers(platform_code: str, ecommerce_code: str) -> set[str]:
    """The enterprises told of an order's changes: those that may read its one-stop view (`GET
    /v1/orders/…`: its platform and its ecommerce seller). The view holds the seller's FX year-to-date and
    credit grade and every agency's reasons, which the order's payment and logistics firms are not shown, so
    a delivery of it goes no further than the GET would (spec §7.3 "documents it is a party to", read with
    §4.4's readers; a firm that filed the payment or the waybill learns its own document's fate otherwise)."""
    return {platform_code, ecommerce_code}
