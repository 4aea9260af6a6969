"""Customs registration codes (spec 1.1 §3, §7.5) on the real gateway app in-process (httpx ASGI transport, no
broker), on SQLite (what `make up` runs) and PostgreSQL (production):

- a registration may carry `customs_code`; `GET /v1/enterprises/{code}` and the registration event show it;
- it is unique: a second enterprise with a customs code already held is 409 naming `customs_code`, and nothing
  of it is stored or staged; re-registering an enterprise is 409 as in 1.0, with or without a customs code;
- `store.enterprise_codes`, the CEB front door's party lookup: both kinds of code in one query, unknown codes
  absent, an enterprise code winning over the same string as a customs code;
- two registrations racing for one customs code (PostgreSQL): one 201, the other 409 naming it.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import event, func, insert, select

from services.gateway import app as gateway
from services.gateway import store
from services.gateway.tables import api_keys, enterprises
from shared.settings import settings
from shared.tables import OUTBOX
from tests.conftest import create_database
from tests.support import new_uscc

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": f"Bearer {settings().sw_admin_token}"}


def customs_code() -> str:
    """A fresh 10-character customs code (4 digits of the customs area, then 6 more, as customs issues them)."""
    return "1105" + uuid.uuid4().hex[:6].upper()


def registration(code: str, customs: str | None = None, **extra: object) -> dict:
    body = {"code": code, "name": f"Enterprise {code}", "roles": ["platform", "ecommerce"], **extra}
    if customs is not None:
        body["customs_code"] = customs
    return body


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:  # noqa: ANN001
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return create_database(request.getfixturevalue("postgres_port"), f"gw_customs_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def client(database):
    await gateway.service.open_database(database)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway") as c:
            yield c
    finally:
        await gateway.service.stop()  # the group-commit writer and the database
        gateway.group_commit = None


async def register(client: httpx.AsyncClient, body: dict) -> httpx.Response:
    return await client.post("/v1/enterprises", headers=OPERATOR, json=body)


async def counts() -> dict[str, int]:
    async with gateway.service.sessions() as session:
        return {t.name: await session.scalar(select(func.count()).select_from(t)) for t in (enterprises, api_keys, OUTBOX)}


async def registered_events() -> list[dict]:
    async with gateway.service.sessions() as session:
        rows = (await session.execute(select(OUTBOX.c.value).order_by(OUTBOX.c.id))).all()
    return [p for p in (json.loads(r.value)["payload"] for r in rows) if "registered_at" in p]


# --- registration ----------------------------------------------------------------------------------------------


async def test_a_registration_keeps_its_customs_code_and_shows_it(client):
    code, customs = new_uscc(), customs_code()
    r = await register(client, registration(code, customs))
    assert r.status_code == 201, r.text
    plain = new_uscc()
    assert (await register(client, registration(plain))).status_code == 201  # without one, as in 1.0

    view = (await client.get(f"/v1/enterprises/{code}", headers=OPERATOR)).json()
    assert view["customs_code"] == customs
    own = await client.get(f"/v1/enterprises/{code}", headers={"Authorization": f"Bearer {r.json()['api_key']}"})
    assert own.json()["customs_code"] == customs
    assert "customs_code" not in (await client.get(f"/v1/enterprises/{plain}", headers=OPERATOR)).json()

    events = {e["code"]: e for e in await registered_events()}
    assert events[code]["customs_code"] == customs
    assert events[plain]["customs_code"] is None


async def test_a_customs_code_already_held_is_409_naming_it_and_nothing_is_stored(client):
    customs = customs_code()
    first = new_uscc()
    assert (await register(client, registration(first, customs))).status_code == 201
    before = await counts()

    r = await register(client, registration(new_uscc(), customs))
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("customs_code", "already_registered")]
    assert first in r.json()["detail"]
    assert await counts() == before  # no enterprise, no key, no event


async def test_re_registering_an_enterprise_is_409_as_before_with_or_without_a_customs_code(client):
    """A registration is never replayed (spec §3: 409 if the code is registered): the identical body again is
    409 with no field named, as in 1.0, and so is the same code with another customs code or none."""
    code, customs = new_uscc(), customs_code()
    body = registration(code, customs)
    assert (await register(client, body)).status_code == 201
    before = await counts()
    for again in (body, registration(code, customs_code()), registration(code)):
        r = await register(client, again)
        assert r.status_code == 409, r.text
        assert "errors" not in r.json() and f"{code} is already registered" in r.json()["detail"]
    assert await counts() == before
    view = (await client.get(f"/v1/enterprises/{code}", headers=OPERATOR)).json()
    assert view["customs_code"] == customs  # the first registration stands


async def test_a_code_that_would_make_a_party_code_ambiguous_is_409(client):
    """A customs code equal to another enterprise's own code, or a (foreign) code equal to another's customs
    code, would let one string name two enterprises in a CEB record: refused, naming the field."""
    foreign = "SG" + uuid.uuid4().hex[:8].upper()  # a 10-character foreign code, shaped like a customs code
    assert (await register(client, registration(foreign, country="SG"))).status_code == 201
    customs = customs_code()
    assert (await register(client, registration(new_uscc(), customs))).status_code == 201
    before = await counts()

    r = await register(client, registration(new_uscc(), foreign))
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "customs_code", r.text
    assert "enterprise code" in r.json()["detail"]
    r = await register(client, registration(customs, country="HK"))
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "code", r.text
    assert await counts() == before


async def test_a_malformed_customs_code_is_422_and_nothing_is_stored(client):
    before = await counts()
    for bad in ("110591015", "1105abcdef", "11059101590"):
        r = await register(client, registration(new_uscc(), bad))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["customs_code"]
    assert await counts() == before


# --- the party lookup --------------------------------------------------------------------------------------------


async def test_enterprise_codes_finds_both_kinds_of_code_in_one_query(client):
    a, b, c = new_uscc(), new_uscc(), new_uscc()
    a_customs, c_customs = customs_code(), customs_code()
    for body in (registration(a, a_customs), registration(b), registration(c, c_customs)):
        assert (await register(client, body)).status_code == 201

    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(gateway.service.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with gateway.service.sessions() as session:
            found = await store.enterprise_codes(session, [a_customs, b, c, c_customs, "0000000000", new_uscc(), b])
            assert await store.enterprise_codes(session, []) == {}
    finally:
        event.remove(gateway.service.engine.sync_engine, "before_cursor_execute", listen)
    assert found == {a_customs: a, b: b, c: c, c_customs: c}  # unknown codes absent
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1, statements


async def test_enterprise_codes_lets_an_enterprise_code_win_over_the_same_customs_code(client):
    """Registration refuses the collision; two registrations at the same moment could still make one (no index
    spans both columns), so rows are written here directly, as such a race would leave them."""
    shared_string = "SG" + uuid.uuid4().hex[:8].upper()
    other = new_uscc()
    now = datetime.now(timezone.utc)
    async with gateway.service.sessions() as session, session.begin():
        await session.execute(insert(enterprises), [
            {"code": shared_string, "name": "Foreign", "roles": ["platform"], "country": "SG",
             "customs_credit": "general", "api_key_hash": uuid.uuid4().hex, "registered_at": now,
             "customs_code": None},
            {"code": other, "name": "Domestic", "roles": ["platform"], "country": "CN",
             "customs_credit": "general", "api_key_hash": uuid.uuid4().hex, "registered_at": now,
             "customs_code": shared_string}])
    async with gateway.service.sessions() as session:
        assert await store.enterprise_codes(session, [shared_string]) == {shared_string: shared_string}
        assert await store.enterprise_codes(session, {shared_string, other}) == {shared_string: shared_string,
                                                                                 other: other}


# --- a race (PostgreSQL) ----------------------------------------------------------------------------------------


async def test_two_registrations_racing_for_one_customs_code_one_wins_the_other_is_409(postgres_port, monkeypatch):
    """Both pass the check before either inserts (held at a barrier, so the interleaving is forced): the unique
    index lets exactly one commit; the other is answered 409 naming `customs_code`, not 500."""
    barrier = asyncio.Barrier(2)
    checks = {"n": 0}
    real = gateway.refuse_taken_codes

    async def held(session, reg):  # noqa: ANN001, ANN202
        checks["n"] += 1
        await real(session, reg)
        if checks["n"] <= 2:  # the two first checks wait for each other; the loser's re-check does not
            await asyncio.wait_for(barrier.wait(), 10)

    monkeypatch.setattr(gateway, "refuse_taken_codes", held)
    await gateway.service.open_database(create_database(postgres_port, f"gw_customs_race_{uuid.uuid4().hex[:10]}"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway") as client:
            customs = customs_code()
            codes = [new_uscc(), new_uscc()]
            answers = await asyncio.gather(*(register(client, registration(code, customs)) for code in codes))
            assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
            loser = next(r for r in answers if r.status_code == 409)
            assert loser.json()["errors"][0]["field"] == "customs_code"
            assert checks["n"] == 3  # the loser met the unique index, then read who holds the code
            assert await counts() == {"enterprises": 1, "api_keys": 1, "outbox": 1}
    finally:
        await gateway.service.stop()
        gateway.group_commit = None
