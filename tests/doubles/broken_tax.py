"""A deliberately broken tax agency: proves that the contract suite fails a wrong agency, with a report
that names the scenario, the field, what was expected and what came (tests/e2e/test_contract_suite.py).

It does what a tax agency outside our repository would do: reads orders (`sw.order.submitted.v1`, it has
not migrated to v2) and customs' decisions with plain aiokafka, joins them in memory, and answers on
`tax.assessment.v1`. It gets everything right but one thing: retail imports pay VAT at 100% of the
statutory amount instead of 70% (domain §7). General trade, exports and rejections come out right, so
only the retail scenarios should fail, on `vat` and what follows from it (`total`, `declared_difference`).

It reads and writes only its own copies of the topics, under `--topic-prefix`, so the real tax agency of a
test mesh never sees the golden events meant for it, and the read models never see its wrong answers.

    python -m tests.doubles.broken_tax --bootstrap HOST:PORT --topic-prefix PREFIX

Prints `ready` once it is subscribed; stops on SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.envelope import Envelope
from tooling.contracts.suite.agency import ensure_topics
from contracts.topics import CUSTOMS_DECISION, ORDER_SUBMITTED, TAX_ASSESSMENT
from contracts.v1.events import CustomsDecision, Order, OrderSubmitted, TaxAssessment
from shared.outbox import outbox_row
from shared.reference import hs_catalogue

VAT_FACTOR = Decimal("1")  # the bug: the domain says 0.7 for retail imports
CONSUMPTION_TAX_FACTOR = Decimal("0.7")
CENT = Decimal("0.01")


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def assess(order: Order, decision: CustomsDecision, version: int) -> TaxAssessment:
    common = dict(platform_code=order.platform_code, order_no=order.order_no, order_version=version,
                  ecommerce_code=order.ecommerce_code, assessed_at=datetime.now(timezone.utc))
    if decision.status != "released":
        return TaxAssessment(status="not_applicable", **common)
    if order.direction == "export":
        return TaxAssessment(status="exempt", **common)
    catalogue = hs_catalogue()
    with localcontext(Context(prec=50)):
        values = [i.quantity * i.unit_price for i in order.items]
        goods = sum(values, Decimal(0))
        extra = order.freight + order.insurance - order.discount
        duty = ct = vat = dv_total = Decimal(0)
        for line, value in zip(order.items, values):
            entry = catalogue[line.hs_code]
            dv = value + extra * value / goods
            dv_total += dv
            if decision.tax_mode == "general_trade":
                d = dv * entry.mfn_duty_rate
                c = (dv + d) / (1 - entry.consumption_tax_rate) * entry.consumption_tax_rate
                duty, ct, vat = duty + d, ct + c, vat + (dv + d + c) * entry.vat_rate
            else:
                statutory_ct = dv / (1 - entry.consumption_tax_rate) * entry.consumption_tax_rate
                ct += CONSUMPTION_TAX_FACTOR * statutory_ct
                vat += VAT_FACTOR * (dv + statutory_ct) * entry.vat_rate
        duty, ct, vat = cents(duty), cents(ct), cents(vat)
        total = duty + ct + vat
    return TaxAssessment(status="assessed" if decision.tax_mode != "general_trade" else "general_trade",
                         dutiable_value=cents(dv_total), customs_duty=duty, vat=vat, consumption_tax=ct, total=total,
                         declared_tax_total=order.tax_total, declared_difference=order.tax_total - total, **common)


async def run(bootstrap: str, prefix: str) -> None:
    orders_topic, decisions_topic = prefix + ORDER_SUBMITTED.name, prefix + CUSTOMS_DECISION.name
    answers_topic = prefix + TAX_ASSESSMENT.name
    await ensure_topics(bootstrap, [orders_topic, decisions_topic, answers_topic], create=True)
    consumer = AIOKafkaConsumer(orders_topic, decisions_topic, bootstrap_servers=bootstrap,
                                group_id=f"broken-tax-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    orders: dict[str, tuple[int, Order]] = {}
    decisions: dict[str, CustomsDecision] = {}
    answered: set[tuple[str, int]] = set()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        print("ready", flush=True)
        async for record in consumer:
            envelope = Envelope.model_validate_json(record.value)
            key = envelope.correlation_id
            if envelope.type == "order.submitted" and envelope.version == 1:
                event = OrderSubmitted.model_validate(envelope.payload)
                orders[key] = (event.version, event.order)
            elif envelope.type == "customs.decision":
                decisions[key] = CustomsDecision.model_validate(envelope.payload)
            if key in orders and key in decisions and (key, orders[key][0]) not in answered:
                version, order = orders[key]
                if decisions[key].order_version != version:
                    continue
                answered.add((key, version))
                row = outbox_row(assess(order, decisions[key], version), "broken-tax", key)
                headers = [(k, str(v).encode()) for k, v in json.loads(row["headers"]).items()]
                await producer.send_and_wait(answers_topic, row["value"], key=row["key"].encode(), headers=headers)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--bootstrap", required=True)
    args.add_argument("--topic-prefix", required=True, help="its own copies of the topics, never the real ones")
    a = args.parse_args()
    if not a.topic_prefix:
        sys.exit("--topic-prefix must not be empty: the double must not answer on the real topics")
    loop = asyncio.new_event_loop()
    task = loop.create_task(run(a.bootstrap, a.topic_prefix))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
