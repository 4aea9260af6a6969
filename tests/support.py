"""Helpers for tests: valid identifiers, realistic documents, polling."""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from contracts.identifiers import USCC_ALPHABET, resident_id_check_character, uscc_check_character

_rng = random.Random()


def new_uscc() -> str:
    first17 = "91" + "".join(_rng.choice(USCC_ALPHABET) for _ in range(15))
    return first17 + uscc_check_character(first17)


def new_resident_id(birth: str = "19900307") -> str:
    first17 = "110101" + birth + f"{_rng.randrange(1000):03d}"
    return first17 + resident_id_check_character(first17)


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**12}-{_rng.randrange(10**6)}"


def order_body(platform: str, ecommerce: str, order_no: str, *, items: list[dict] | None = None,
               direction: str = "import", trade_mode: str = "9610", freight: str = "12.00", insurance: str = "0.00",
               discount: str = "10.00", tax_total: str = "85.50", buyer_id: str | None = None,
               buyer_name: str = "Zhang San", currency: str = "CNY", destination_country: str | None = None) -> dict:
    items = items or [{"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": 2,
                       "unit": "piece", "unit_price": "180.00", "origin_country": "FR"}]
    goods = sum(Decimal(str(i["quantity"])) * Decimal(i["unit_price"]) for i in items)
    paid = goods + Decimal(freight) + Decimal(insurance) - Decimal(discount) + Decimal(tax_total)
    body: dict[str, Any] = {
        "order_no": order_no, "platform_code": platform, "ecommerce_code": ecommerce, "direction": direction,
        "trade_mode": trade_mode, "currency": currency, "items": items, "freight": freight, "insurance": insurance,
        "discount": discount, "tax_total": tax_total, "actual_paid": f"{paid:.2f}",
        "consignee": {"name": buyer_name, "phone": "13800000000", "address": "1 Example Road, Hangzhou", "country": "CN"},
        "destination_country": destination_country,
    }
    if direction == "import":
        # A fresh buyer per order unless the test names one, so annual totals never leak between tests.
        body["buyer"] = {"name": buyer_name, "id_type": "resident_id", "id_number": buyer_id or new_resident_id(),
                         "phone": "13800000000"}
    else:
        body["destination_country"] = destination_country or "US"
        body["consignee"]["country"] = body["destination_country"]
    return body


def payment_body(payment_code: str, order: dict, *, amount: str | None = None, payer_id: str | None = None,
                 payer_name: str | None = None, payment_no: str | None = None) -> dict:
    buyer = order.get("buyer") or {}
    return {
        "payment_no": payment_no or unique("PAY"), "payment_code": payment_code, "order_no": order["order_no"],
        "platform_code": order["platform_code"], "amount": amount or order["actual_paid"], "currency": order["currency"],
        "payer": {"name": payer_name or buyer.get("name", "Zhang San"), "id_type": "resident_id",
                  "id_number": payer_id or buyer.get("id_number", "110101199003070011")},
        "paid_at": "2026-11-24T10:00:00+08:00",
    }


def waybill_body(logistics_code: str, order: dict, *, freight: str | None = None, waybill_no: str | None = None) -> dict:
    return {
        "waybill_no": waybill_no or unique("SF"), "logistics_code": logistics_code, "order_no": order["order_no"],
        "platform_code": order["platform_code"], "freight": freight or order["freight"], "insured_fee": "0.00",
        "gross_weight_kg": "0.45", "package_count": 1, "consignee": order["consignee"],
    }


def wait_for(probe: Callable[[], Any], timeout: float = 60, interval: float = 0.25, what: str = "condition") -> Any:
    """Polls until probe() returns something truthy; returns it. Fails with the last value seen."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def wait_until(probe: Callable[[], Awaitable[Any]], timeout: float = 60, interval: float = 0.2,
                     what: str = "condition") -> Any:
    """`wait_for` for a coroutine probe (in-process services on the test's event loop): awaits probe() until
    it returns something truthy; returns it. Fails with the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def close_in_process_gateway(http: Any) -> None:
    """Closes a gateway app a test opened in its own event loop (`service.open_database` + an httpx client on
    the ASGI app): the client, this loop's tasks (the group commit writer started here: a test module run
    before may have left its own, on a loop that is closed, and they cannot be awaited from here), the
    database."""
    from services.gateway import app as gateway_app  # noqa: PLC0415 - only tests that run the app need it

    await http.aclose()
    service = gateway_app.service
    mine = [t for t in service._tasks if t.get_loop() is asyncio.get_running_loop()]
    for task in mine:
        task.cancel()
    await asyncio.gather(*mine, return_exceptions=True)
    service._tasks.clear()
    gateway_app.group_commit = None
    await service.close_database()
