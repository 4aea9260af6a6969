"""Webhook rules (spec §7.3) as pure functions: signatures, the URL policy, the retry schedule, parties."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from services.gateway.webhooks import rules

SECRET = "whsec_" + "ab" * 24
BODY = b'{"delivery_id":"d1","type":"order.status_changed","occurred_at":"2026-11-29T10:00:00+00:00","data":{}}'


# --- signatures ---------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_t_dot_body_in_hex():
    # Computed independently of the module, as a receiver would from the spec's words.
    expected = hmac.new(SECRET.encode(), b"1764410400." + BODY, hashlib.sha256).hexdigest()
    assert rules.signature(SECRET, 1764410400, BODY) == expected
    assert rules.signature_header(SECRET, 1764410400, BODY) == f"t=1764410400,v1={expected}"


def test_verify_accepts_the_signed_body_and_refuses_any_change():
    header = rules.signature_header(SECRET, 1000, BODY)
    assert rules.verify(SECRET, header, BODY, now=1000)
    assert not rules.verify(SECRET, header, BODY + b" ", now=1000)  # one byte more
    assert not rules.verify("whsec_other", header, BODY, now=1000)  # another secret
    forged_time = header.replace("t=1000", "t=1001")  # the time is signed too
    assert not rules.verify(SECRET, forged_time, BODY, now=1001)


def test_verify_refuses_an_old_request_and_garbage():
    header = rules.signature_header(SECRET, 1000, BODY)
    assert rules.verify(SECRET, header, BODY, now=1300)
    assert not rules.verify(SECRET, header, BODY, now=1301)  # replayed after the 5-minute tolerance
    for bad in ("", "t=abc,v1=00", "v1=00", "t=1000", "nonsense"):
        assert not rules.verify(SECRET, bad, BODY, now=1000)


def test_delivery_id_is_stable_per_event_and_webhook():
    a = rules.delivery_id("e1", "wh_1")
    assert a == rules.delivery_id("e1", "wh_1")  # a redelivered event: the same delivery
    assert len({a, rules.delivery_id("e2", "wh_1"), rules.delivery_id("e1", "wh_2")}) == 3


def test_delivery_body_has_the_spec_fields_and_is_exact_text():
    at = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
    body = rules.delivery_body("d1", at, {"order_no": "O1", "customs": {"status": "released"}})
    assert json.loads(body) == {"delivery_id": "d1", "type": "order.status_changed",
                                "occurred_at": "2026-11-29T10:00:00+00:00",
                                "data": {"order_no": "O1", "customs": {"status": "released"}}}
    assert body == rules.delivery_body("d1", at, {"order_no": "O1", "customs": {"status": "released"}})


def test_secrets_are_sealed_at_rest_and_open_only_under_the_same_key():
    from nacl.exceptions import CryptoError  # noqa: PLC0415

    box = rules.secret_box("gateway-key")
    sealed = rules.seal_secret(box, SECRET)
    assert SECRET not in sealed and len(sealed) <= 200  # the column's width
    assert rules.open_secret(rules.secret_box("gateway-key"), sealed) == SECRET
    assert rules.seal_secret(box, SECRET) != sealed  # a fresh nonce each time
    with pytest.raises(CryptoError):
        rules.open_secret(rules.secret_box("another-key"), sealed)


def test_secrets_and_ids_are_random():
    assert len({rules.new_secret() for _ in range(50)}) == 50
    assert rules.new_secret().startswith("whsec_") and len(rules.new_secret()) == 54
    assert rules.new_webhook_id().startswith("wh_")


# --- URL policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://localhost/x", "https://example.com/a?b=c",
                                 "http://10.0.0.5/internal"])
def test_development_accepts_any_http_url(url):
    assert rules.url_problem(url, production=False) is None


@pytest.mark.parametrize("url, why", [
    ("ftp://example.com/x", "http or https"),
    ("example.com/hook", "http or https"),
    ("https://", "http or https"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://example.com:99999/", "not a URL"),
    ("https://example.com/#frag", "fragment"),
])
def test_malformed_urls_are_refused_everywhere(url, why):
    for production in (False, True):
        problem = rules.url_problem(url, production)
        assert problem is not None and why in problem


def test_nat64_of_a_public_ipv4_address_is_public():
    assert rules.address_problem(["64:ff9b::808:808"]) is None  # 8.8.8.8 through the well-known prefix


@pytest.mark.parametrize("url", ["http://127.0.0.1\n/hook", "http://ex ample.com/", "https://example.com/a b",
                                 "https://example.com/\r\nX-Injected: 1", "https://example.com/\t",
                                 " https://example.com/", "https://example.com/\x7f", "https://example.com/\x00"])
def test_urls_with_whitespace_or_control_characters_are_refused_everywhere(url):
    """urlsplit silently drops tabs and newlines (and the HTTP client refuses them): the URL stored must be
    the URL checked and the URL called, so such a URL is refused at registration rather than failing every
    attempt for 24 hours."""
    for production in (False, True):
        problem = rules.url_problem(url, production)
        assert problem is not None and "space or control" in problem, (url, problem)


def test_production_accepts_https_only():
    assert "https" in rules.url_problem("http://example.com/hook", production=True)
    assert "https" in rules.url_problem("http://127.0.0.1/hook", production=True)
    assert rules.url_problem("https://example.com/hook", production=True) is None


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1",  # loopback
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1",  # private
    "169.254.169.254", "fe80::1%eth0",  # link-local (cloud metadata)
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0", "::",  # unspecified
    "224.0.0.1", "ff02::1",  # multicast
    "240.0.0.1", "192.0.2.10", "2001:db8::1",  # reserved, documentation
    "::ffff:127.0.0.1", "::ffff:10.0.0.1",  # IPv4-mapped
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    # NAT64 (RFC 6052 well-known prefix, RFC 8215 local-use prefix): a NAT64 gateway on the way turns these
    # into the IPv4 address in their last 32 bits, so they are judged by it
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::a9fe:a9fe", "64:ff9b:1::1:2:a9fe:a9fe",
    # IPv4-compatible (deprecated, RFC 4291 2.5.5.1): never a public address of its own
    "::127.0.0.1", "::a9fe:a9fe", "::8.8.8.8",
    # IPv4-translated (SIIT, RFC 2765): judged by their IPv4 address
    "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe",
    # not globally reachable, newer than some Pythons' tables: site-local (deprecated), documentation
    # (RFC 9637), SRv6 SIDs (RFC 9602)
    "fec0::1", "3fff::1", "5f00::1",
])
def test_non_public_addresses_are_refused(address):
    assert rules.address_problem([address]) is not None


def test_one_internal_address_among_public_ones_is_refused():
    assert rules.address_problem(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]) is None
    assert rules.address_problem(["93.184.216.34", "10.0.0.1"]) is not None
    assert rules.address_problem([]) is not None
    assert rules.address_problem(["not-an-address"]) is not None


def test_host_and_port():
    assert rules.host_and_port("https://example.com/x") == ("example.com", 443)
    assert rules.host_and_port("http://example.com/x") == ("example.com", 80)
    assert rules.host_and_port("http://[::1]:8080/x") == ("::1", 8080)


# --- retries -------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 29, 0, 0, tzinfo=timezone.utc)


def test_backoff_doubles_with_jitter_between_half_and_all_of_the_step():
    s = rules.RetrySchedule(base=10, cap=3600, give_up_after=timedelta(hours=24))
    assert [round(s.delay(n, 0.999).total_seconds(), 2) for n in (1, 2, 3, 4)] == [9.99, 19.99, 39.98, 79.96]
    assert [s.delay(n, 0.0).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert s.delay(30, 0.0) == timedelta(seconds=1800)  # capped at an hour, halved by the least jitter
    assert s.delay(10_000, 0.99) <= timedelta(hours=1)  # no overflow for absurd attempt numbers


def test_gives_up_after_24_hours_with_a_last_try_at_the_limit():
    s = rules.RetrySchedule()
    assert s.next_attempt(T0, T0 + timedelta(seconds=1), 1, 0.5) == T0 + timedelta(seconds=1 + 7.5)
    near_end = T0 + timedelta(hours=23, minutes=50)
    assert s.next_attempt(T0, near_end, 20, 0.5) == T0 + timedelta(hours=24)  # not beyond the day
    assert s.next_attempt(T0, T0 + timedelta(hours=24), 21, 0.5) is None
    assert s.next_attempt(T0, T0 + timedelta(hours=30), 21, 0.5) is None


def test_attempts_in_24_hours_by_the_default_schedule():
    s, at, n = rules.RetrySchedule(), T0, 0
    while at is not None:
        n += 1
        at = s.next_attempt(T0, at, n, 0.5)
    assert 35 <= n <= 45  # about 40 attempts over the day at mid jitter (45 minutes apart once capped)


@pytest.mark.parametrize("code, ok", [(200, True), (204, True), (299, True), (301, False), (400, False),
                                      (500, False), (None, False)])
def test_only_2xx_delivers(code, ok):
    assert rules.succeeded(code) is ok


def test_an_order_is_told_to_those_who_may_read_its_view():
    assert rules.readers("P", "E") == {"P", "E"}
    assert rules.readers("P", "P") == {"P"}  # a platform selling its own goods


# --- the registration's URL check (422 naming `url`) ------------------------------------------------


async def _refusal(url: str, production: bool) -> dict | None:
    from services.gateway.webhooks.api import check_url  # noqa: PLC0415
    from shared.http import Problem  # noqa: PLC0415

    try:
        await check_url(url, production)
    except Problem as problem:
        assert problem.status == 422
        (error,) = problem.errors
        return error
    return None


@pytest.mark.parametrize("url, code", [
    ("http://127.0.0.1:8080/hook", "url_not_allowed"),  # http: refused before resolving
    ("https://127.0.0.1/hook", "not_public"),
    ("https://localhost/hook", "not_public"),  # a name that resolves to loopback
    ("https://10.0.0.7/hook", "not_public"),
    ("https://192.168.1.20/hook", "not_public"),
    ("https://169.254.169.254/latest/meta-data", "not_public"),
    ("https://[::1]/hook", "not_public"),
    ("https://[fd12:3456::1]/hook", "not_public"),
    # numeric forms the resolver understands: decimal, octal, hex, short
    ("https://2130706433/hook", "not_public"), ("https://0177.0.0.1/hook", "not_public"),
    ("https://0x7f.1/hook", "not_public"), ("https://127.1/hook", "not_public"), ("https://0/hook", "not_public"),
    ("https://[::ffff:7f00:1]/hook", "not_public"), ("https://[64:ff9b::a9fe:a9fe]/hook", "not_public"),
    ("https://[::127.0.0.1]/hook", "not_public"),
    ("https://evil.example\\@127.0.0.1/hook", "url_not_allowed"),
])
async def test_production_registration_refuses_loopback_and_private_addresses(url, code):
    error = await _refusal(url, production=True)
    assert error is not None and error["field"] == "url" and error["code"] == code, error


async def test_production_registration_accepts_a_public_address_and_development_anything():
    assert await _refusal("https://93.184.216.34/hook", production=True) is None  # a literal: no DNS needed
    assert await _refusal("http://127.0.0.1:8080/hook", production=False) is None
    error = await _refusal("http://127.0.0.1\n/hook", production=False)  # not stored to fail for 24 hours
    assert error is not None and error["field"] == "url" and error["code"] == "url_not_allowed"
