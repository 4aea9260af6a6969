"""The golden scenarios, per agency role: input events built from the domain's worked examples and edge
cases, and the answers the domain rules call for.

Every run mints fresh enterprise codes (valid unified social credit codes) and order numbers, so the suite
can run again and again against the same broker and the same agency: nothing it publishes meets what an
earlier run left behind (credit files, FX year totals, buyers' annual quotas).

The documents are the contract examples (`contracts/examples.py`: the spec's import, domain §7 worked
example 1, and its retail export) with fresh identifiers put in, and variations of them for the edge cases.
Inputs are built the way the gateway builds them: the REST body is validated with the REST contract
(`contracts.v1.documents`), the buyer's and payer's identity numbers travel masked and sealed for customs,
and every order is published on `sw.order.submitted.v1` and `sw.order.submitted.v2` (the gateway
dual-publishes; an agency may read either). For the agencies that listen to customs, the suite plays
customs and publishes its decisions (`tax_mode`, `dutiable_value_cny` filled as customs fills them).

Expected figures are the domain's: the worked examples' numbers as written (domain §7), and §9/§11
computed by `tooling.contracts.suite.domain` from the rules and the reference tables."""
from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, Decimal
from typing import Any

from contracts import examples
from contracts.identifiers import USCC_ALPHABET, mask_id_number, resident_id_check_character, uscc_check_character
from contracts.v1.documents import EnterpriseRegistration, OrderIn, PaymentIn, WaybillIn
from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    EnterpriseRegistered,
    FxDirectoryStatusChanged,
    FxSettled,
    LogisticsAnomaly,
    NegativeListChanged,
    Order,
    OrderSubmitted,
    Payment,
    PaymentSubmitted,
    Reason,
    SealedPerson,
    ShipmentStatusChanged,
    TaxAssessment,
    Waybill,
    WaybillSubmitted,
    WaybillTracked,
)
from contracts.v2.events import OrderSubmittedV2
from tooling.contracts.suite import domain
from tooling.contracts.suite.scenario import Expect, Publish, Scenario, Step, codes
from shared.reference import FxRates, fx_rates
from shared.sealing import seal
from shared.settings import DEV_CUSTOMS_SEALING_PUBLIC_KEY

D = Decimal

# Customs learns of enterprises on another topic than the documents; the registrations go first and the
# documents this long after, as they would in life (the gateway refuses documents of unknown parties).
REGISTRATION_SETTLE_SECONDS = 2.0

# Domain §7 worked example 1's line, as the contract examples carry it: face cream 2 x 180.00.
FACE_CREAM = dict(examples.IMPORT_ORDER_IN["items"][0])
LEATHER_SHOES = {"item_no": "SKU-2", "name": "Leather shoes", "hs_code": "6403990090", "quantity": 1,
                 "unit": "pair", "unit_price": "500.00", "origin_country": "IT"}
HANDBAG = {"item_no": "SKU-1", "name": "Leather handbag", "hs_code": "4202210090", "quantity": 1,
           "unit": "piece", "unit_price": "6000.00", "origin_country": "IT"}
# The contract examples' retail export line: cotton T-shirts, 3 x 12.50 USD (freight 4.50).
T_SHIRTS = dict(examples.EXPORT_ORDER_IN["items"][0])
SHOTGUN = {"item_no": "SKU-1", "name": "Hunting shotgun", "hs_code": "9303200000", "quantity": 1,
           "unit": "piece", "unit_price": "800.00", "origin_country": "US"}
RELEASED_OR_INSPECTED = ("inspection selection depends on the agency's own secret salt (domain §10): "
                         "released/green and inspection/red with SELECTED_FOR_INSPECTION are both accepted")


def item(base: dict, **changes: Any) -> dict:
    return {**base, **changes}


@dataclass(frozen=True)
class Parties:
    platform: str
    ecommerce: str
    payment: str
    logistics: str


class Golden:
    """Builds one run's inputs: fresh codes and numbers, documents as the gateway would publish them."""

    def __init__(self, run_id: str | None = None, customs_public_key: str = DEV_CUSTOMS_SEALING_PUBLIC_KEY,
                 now: datetime | None = None, rates: FxRates | None = None):
        self.run_id = run_id or "".join(secrets.choice("ABCDEFGHJKLMNPQRTUWXY0123456789") for _ in range(6))
        self.customs_public_key = customs_public_key
        self.now = now or datetime.now(timezone.utc)
        self.rates = rates or fx_rates()
        self._orders = 0

    # --- identifiers -------------------------------------------------------------------------------

    def uscc(self) -> str:
        first17 = "91" + "".join(secrets.choice(USCC_ALPHABET) for _ in range(15))
        return first17 + uscc_check_character(first17)

    def resident_id(self) -> str:
        # A random birth date and sequence: some twenty million buyers, so that runs do not meet on one
        # buyer's annual total (domain §5).
        born = date(1950, 1, 1) + timedelta(days=secrets.randbelow(20000))
        first17 = "110101" + born.strftime("%Y%m%d") + f"{secrets.randbelow(1000):03d}"
        return first17 + resident_id_check_character(first17)

    def order_no(self) -> str:
        self._orders += 1
        return f"SUITE-{self.run_id}-{self._orders:03d}"

    def parties(self) -> Parties:
        return Parties(self.uscc(), self.uscc(), self.uscc(), self.uscc())

    # --- REST bodies (what a platform, payment firm or logistics firm submits) -------------------

    def registration_body(self, code: str, roles: Sequence[str], customs_credit: str = "general") -> dict:
        return {"code": code, "name": f"Contract suite {self.run_id} {roles[0]} {code[-4:]}", "roles": list(roles),
                "country": "CN", "customs_credit": customs_credit}

    def order_body(self, p: Parties, items: Sequence[dict], *, direction: str = "import", trade_mode: str = "9610",
                   currency: str = "CNY", freight: str = "0.00", insurance: str = "0.00", discount: str = "0.00",
                   tax_total: str = "0.00", destination_country: str | None = None) -> dict:
        """The contract example's import or export order, with fresh numbers and these goods and amounts."""
        goods = sum((D(str(i["quantity"])) * D(i["unit_price"]) for i in items), D(0))
        paid = goods + D(freight) + D(insurance) - D(discount) + D(tax_total)
        body = copy.deepcopy(examples.IMPORT_ORDER_IN if direction == "import" else examples.EXPORT_ORDER_IN)
        body.update({
            "order_no": self.order_no(), "platform_code": p.platform, "ecommerce_code": p.ecommerce,
            "direction": direction, "trade_mode": trade_mode, "currency": currency, "items": [dict(i) for i in items],
            "freight": freight, "insurance": insurance, "discount": discount, "tax_total": tax_total,
            "actual_paid": f"{paid:.2f}",
        })
        if direction == "import":
            # A fresh buyer for every order, so that no run meets an earlier run's annual total (domain §5).
            body["buyer"]["id_number"] = self.resident_id()
        else:
            body["destination_country"] = destination_country or body["destination_country"]
            body["consignee"]["country"] = body["destination_country"]
        return body

    def payment_body(self, p: Parties, order: dict, *, amount: str | None = None, payer_id: str | None = None,
                     payer_name: str | None = None) -> dict:
        body = copy.deepcopy(examples.PAYMENT_IN)
        buyer = order["buyer"]
        body.update({
            "payment_no": f"PAY-{order['order_no']}", "payment_code": p.payment, "order_no": order["order_no"],
            "platform_code": order["platform_code"], "amount": amount or order["actual_paid"],
            "currency": order["currency"], "paid_at": self.now.isoformat(),
        })
        body["payer"].update(name=payer_name or buyer["name"], id_number=payer_id or buyer["id_number"])
        return body

    def waybill_body(self, p: Parties, order: dict, *, freight: str | None = None) -> dict:
        template = examples.IMPORT_WAYBILL_IN if order["direction"] == "import" else examples.EXPORT_WAYBILL_IN
        return {**copy.deepcopy(template),
                "waybill_no": f"WB-{order['order_no']}", "logistics_code": p.logistics, "order_no": order["order_no"],
                "platform_code": order["platform_code"], "freight": freight or order["freight"],
                "consignee": copy.deepcopy(order["consignee"])}

    # --- events, as the gateway publishes them ------------------------------------------------------

    def sealed(self, person: Any, with_phone: bool) -> SealedPerson:
        return SealedPerson(name=person.name, id_type=person.id_type, id_number_masked=mask_id_number(person.id_number),
                            id_number_sealed=seal(person.id_number, self.customs_public_key),
                            phone=getattr(person, "phone", None) if with_phone else None)

    def registered(self, code: str, roles: Sequence[str], customs_credit: str = "general") -> Publish:
        reg = EnterpriseRegistration.model_validate(self.registration_body(code, roles, customs_credit))
        return Publish(EnterpriseRegistered(**reg.model_dump(), registered_at=self.now), correlation_id=code)

    def registrations(self, p: Parties) -> tuple[Publish, ...]:
        return (self.registered(p.platform, ["platform"]), self.registered(p.ecommerce, ["ecommerce"]),
                self.registered(p.payment, ["payment"]), self.registered(p.logistics, ["logistics"]))

    def order_submitted(self, body: dict) -> tuple[Publish, Publish]:
        """The order on both major versions, as the gateway dual-publishes it."""
        doc = OrderIn.model_validate(body)
        order = Order(**doc.model_dump(exclude={"buyer"}), buyer=self.sealed(doc.buyer, True) if doc.buyer else None)
        v1 = OrderSubmitted(action="new", version=1, submitted_at=self.now, order=order)
        v2 = OrderSubmittedV2.from_v1(v1, "CN", "CN", {i.item_no: i.brand for i in doc.items})
        key = order_key(body)
        return Publish(v1, key), Publish(v2, key)

    def payment_submitted(self, body: dict) -> Publish:
        doc = PaymentIn.model_validate(body)
        payment = Payment(**doc.model_dump(exclude={"payer"}), payer=self.sealed(doc.payer, False))
        return Publish(PaymentSubmitted(submitted_at=self.now, payment=payment), order_key(body))

    def waybill_submitted(self, body: dict) -> Publish:
        doc = WaybillIn.model_validate(body)
        return Publish(WaybillSubmitted(submitted_at=self.now, waybill=Waybill(**doc.model_dump())), order_key(body))

    def tracked(self, waybill: dict, event: str, at: datetime, location: str = "") -> Publish:
        return Publish(WaybillTracked(waybill_no=waybill["waybill_no"], logistics_code=waybill["logistics_code"],
                                      order_no=waybill["order_no"], platform_code=waybill["platform_code"], event=event,
                                      at=at, location=location), order_key(waybill))

    def decided(self, order: dict, status: str, *, channel: str | None = None, reasons: Iterable[str] = (),
                tax_mode: str | None = None, dutiable_value_cny: str | None = None, logistics_code: str | None = None,
                payment_code: str | None = None, at: datetime | None = None) -> Publish:
        """Customs' decision about `order`, as customs publishes it (the suite plays customs)."""
        at = at or self.now
        return Publish(CustomsDecision(
            platform_code=order["platform_code"], order_no=order["order_no"], order_version=1,
            ecommerce_code=order["ecommerce_code"], logistics_code=logistics_code, payment_code=payment_code,
            direction=order["direction"], trade_mode=order["trade_mode"], status=status, channel=channel,
            reasons=[Reason(code=c, message=f"{c} (contract suite)") for c in reasons], tax_mode=tax_mode,
            dutiable_value_cny=D(dutiable_value_cny) if dutiable_value_cny is not None else None,
            documents_complete_at=at, decided_at=at,
        ), order_key(order))

    def released(self, order: dict, p: Parties, **kw: Any) -> Publish:
        return self.decided(order, "released", channel="green", logistics_code=p.logistics,
                            payment_code=p.payment if order["direction"] == "import" else None, **kw)


def order_key(document: dict) -> str:
    return f"{document['platform_code']}:{document['order_no']}"


def about_order(order: dict) -> dict[str, Any]:
    return {"platform_code": order["platform_code"], "order_no": order["order_no"],
            "ecommerce_code": order["ecommerce_code"]}


# --- tax (domain §7, §8) -------------------------------------------------------------------------------


def tax_scenarios(g: Golden) -> list[Scenario]:
    def assessed(name: str, title: str, items: list[dict], figures: dict[str, str], *, tax_mode: str,
                 dutiable_value_cny: str, **order_kw: Any) -> Scenario:
        p = g.parties()
        order = g.order_body(p, items, **order_kw)
        status = "assessed" if tax_mode == "retail" else "general_trade"
        return Scenario(name, title, (Step(
            publish=(g.registered(p.platform, ["platform"]), g.registered(p.ecommerce, ["ecommerce"]),
                     *g.order_submitted(order),
                     g.released(order, p, tax_mode=tax_mode, dutiable_value_cny=dutiable_value_cny)),
            expect=(Expect(TaxAssessment, order_key(order), {
                **about_order(order), "order_version": 1, "status": status, "currency": "CNY",
                **{f: D(v) for f, v in figures.items()}}),),
        ),))

    def unassessed(name: str, title: str, order: dict, p: Parties, decision: Any, status: str) -> Scenario:
        return Scenario(name, title, (Step(
            publish=(g.registered(p.platform, ["platform"]), g.registered(p.ecommerce, ["ecommerce"]),
                     *g.order_submitted(order), decision),
            expect=(Expect(TaxAssessment, order_key(order), {**about_order(order), "order_version": 1,
                                                             "status": status}),),
        ),))

    export_parties, rejected_parties = g.parties(), g.parties()
    export = g.order_body(export_parties, [T_SHIRTS], direction="export", currency="USD", freight="4.50")
    rejected = g.order_body(rejected_parties, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")
    return [
        assessed("tax-retail-import",
                 "domain §7 worked example 1: face cream 2 x 180.00, freight 12.00, discount 10.00, released retail",
                 [FACE_CREAM], {"dutiable_value": "362.00", "customs_duty": "0.00", "vat": "38.76",
                                "consumption_tax": "44.72", "total": "83.48", "declared_tax_total": "85.50",
                                "declared_difference": "2.02"},
                 tax_mode="retail", dutiable_value_cny="362.00", freight="12.00", discount="10.00", tax_total="85.50"),
        assessed("tax-two-lines",
                 "domain §7 worked example 2: face cream 300.00 and leather shoes 500.00, freight 20.00 shared by value",
                 [item(FACE_CREAM, quantity=1, unit_price="300.00"), LEATHER_SHOES],
                 {"dutiable_value": "820.00", "customs_duty": "0.00", "vat": "79.56", "consumption_tax": "37.99",
                  "total": "117.55", "declared_difference": "0.00"},
                 tax_mode="retail", dutiable_value_cny="820.00", freight="20.00", tax_total="117.55"),
        assessed("tax-general-trade",
                 "domain §7 worked example 3: one handbag of 6,000.00, over the single limit, taxed as general trade",
                 [HANDBAG], {"dutiable_value": "6000.00", "customs_duty": "600.00", "vat": "858.00",
                             "consumption_tax": "0.00", "total": "1458.00", "declared_difference": "0.00"},
                 tax_mode="general_trade", dutiable_value_cny="6000.00", tax_total="1458.00"),
        unassessed("tax-export-exempt", "domain §8: a released retail export is exempt from VAT and consumption tax",
                   export, export_parties, g.released(export, export_parties), "exempt"),
        unassessed("tax-rejected-import", "spec §4.4: a rejected import is not taxed (not_applicable)",
                   rejected, rejected_parties,
                   g.decided(rejected, "rejected", reasons=["AMOUNT_MISMATCH"], dutiable_value_cny="362.00"),
                   "not_applicable"),
    ]


# --- fx (domain §11) -------------------------------------------------------------------------------------


def fx_scenarios(g: Golden) -> list[Scenario]:
    day = domain.china_day(g.now)

    def settled_fields(order: dict, s: domain.Settlement, year_to_date: Decimal) -> dict[str, Any]:
        return {**about_order(order), "status": "settled", "amount": s.amount, "currency": s.currency,
                "amount_cny": s.amount_cny, "rate": s.rate, "amount_usd": s.amount_usd, "year": day.year,
                "year_to_date_usd": year_to_date, "directory_status": domain.directory_status(year_to_date)}

    p1 = g.parties()
    imported = g.order_body(p1, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")
    payment = g.payment_body(p1, imported)
    s1 = domain.settlement(D(payment["amount"]), payment["currency"], day, g.rates)

    p2 = g.parties()
    exported = g.order_body(p2, [item(T_SHIRTS, quantity="8")], direction="export", currency="EUR",
                            destination_country="DE")
    s2 = domain.settlement(D(exported["actual_paid"]), "EUR", day, g.rates)

    p3 = g.parties()
    rejected = g.order_body(p3, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")

    # A B2B direct export (9710) large enough on its own to take the seller past USD 200,000 this year.
    p4 = g.parties()
    unit_price = D("7500.00")
    _, usd_rate = g.rates.rate_on("USD", day)
    quantity = int((domain.DIRECTORY_THRESHOLD_USD * usd_rate / unit_price).to_integral_value(ROUND_CEILING)) + 1
    b2b = g.order_body(p4, [{"item_no": "LOT-1", "name": "Portable computers", "hs_code": "8471300000",
                             "quantity": quantity, "unit": "piece", "unit_price": f"{unit_price:.2f}",
                             "origin_country": "CN"}], direction="export", trade_mode="9710", destination_country="US")
    s4 = domain.settlement(D(b2b["actual_paid"]), "CNY", day, g.rates)

    return [
        Scenario("fx-import-settled",
                 "domain §11: a released import is settled in USD from its payment, at the USD rate of the payment's day",
                 (Step(publish=(*g.order_submitted(imported), g.payment_submitted(payment),
                                g.released(imported, p1, tax_mode="retail", dutiable_value_cny="362.00")),
                       expect=(Expect(FxSettled, order_key(imported), settled_fields(imported, s1, s1.amount_usd)),)),)),
        Scenario("fx-export-settled-eur",
                 "domain §11: a released export in EUR is settled from actual_paid, EUR -> CNY -> USD at the day's rates",
                 (Step(publish=(*g.order_submitted(exported), g.released(exported, p2)),
                       expect=(Expect(FxSettled, order_key(exported), settled_fields(exported, s2, s2.amount_usd)),)),)),
        Scenario("fx-rejected-not-applicable", "spec §4.4: a rejected order is not settled (not_applicable)",
                 (Step(publish=(*g.order_submitted(rejected), g.payment_submitted(g.payment_body(p3, rejected)),
                                g.decided(rejected, "rejected", reasons=["IDENTITY_MISMATCH"])),
                       expect=(Expect(FxSettled, order_key(rejected), {**about_order(rejected),
                                                                        "status": "not_applicable"}),)),)),
        Scenario("fx-directory-threshold",
                 "domain §11: a seller whose year total reaches USD 200,000 must register in the FX directory",
                 (Step(publish=(*g.order_submitted(b2b), g.released(b2b, p4)),
                       expect=(Expect(FxSettled, order_key(b2b), settled_fields(b2b, s4, s4.amount_usd)),
                               Expect(FxDirectoryStatusChanged, p4.ecommerce, {
                                   "enterprise_code": p4.ecommerce, "year": day.year,
                                   "status": "registration_required", "previous_status": "exempt",
                                   "year_to_date_usd": s4.amount_usd}))),)),
    ]


# --- logistics (spec §4.4, §6) ------------------------------------------------------------------------


def logistics_scenarios(g: Golden) -> list[Scenario]:
    def status(waybill: dict, now: str, before: str | None) -> Expect:
        return Expect(ShipmentStatusChanged, order_key(waybill), {
            "logistics_code": waybill["logistics_code"], "waybill_no": waybill["waybill_no"],
            "platform_code": waybill["platform_code"], "order_no": waybill["order_no"], "status": now,
            "previous_status": before})

    hours = lambda n: g.now - timedelta(hours=n)  # noqa: E731

    p1 = g.parties()
    o1 = g.order_body(p1, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")
    w1 = g.waybill_body(p1, o1)

    p2 = g.parties()
    o2 = g.order_body(p2, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")
    w2 = g.waybill_body(p2, o2)

    p3 = g.parties()
    o3 = g.order_body(p3, [T_SHIRTS], direction="export", currency="USD", freight="4.50")
    w3 = g.waybill_body(p3, o3)

    return [
        Scenario("logistics-clearance",
                 "a waybill creates the shipment, customs' release clears it, the firm's delivery delivers it",
                 (Step(publish=(*g.order_submitted(o1), g.waybill_submitted(w1)), expect=(status(w1, "created", None),)),
                  Step(publish=(g.released(o1, p1, tax_mode="retail", dutiable_value_cny="362.00", at=hours(2)),),
                       expect=(status(w1, "cleared", "created"),)),
                  Step(publish=(g.tracked(w1, "delivered", hours(1), "Hangzhou"),),
                       expect=(status(w1, "delivered", "cleared"),)))),
        Scenario("logistics-out-of-order",
                 "tracking out of order: a late lower event (picked_up after departed) changes nothing; "
                 "delivered before customs' release is delivered, with the anomaly DELIVERED_BEFORE_RELEASE",
                 (Step(publish=(*g.order_submitted(o2), g.waybill_submitted(w2)), expect=(status(w2, "created", None),)),
                  Step(publish=(g.tracked(w2, "departed", hours(2), "Paris CDG"),),
                       expect=(status(w2, "departed", "created"),)),
                  Step(publish=(g.tracked(w2, "picked_up", hours(3), "Paris"), g.tracked(w2, "delivered", hours(1))),
                       expect=(status(w2, "delivered", "departed"),
                               Expect(LogisticsAnomaly, order_key(w2), {
                                   "logistics_code": w2["logistics_code"], "waybill_no": w2["waybill_no"],
                                   "order_no": w2["order_no"], "anomaly": "DELIVERED_BEFORE_RELEASE"}))))),
        Scenario("logistics-release-before-waybill",
                 "customs' release may come before the waybill: the shipment is created, then cleared",
                 (Step(publish=(*g.order_submitted(o3), g.released(o3, p3, at=hours(1)))),
                  Step(publish=(g.waybill_submitted(w3),),
                       expect=(status(w3, "created", None), status(w3, "cleared", "created"))))),
    ]


# --- credit (domain §9) ---------------------------------------------------------------------------------


def credit_scenarios(g: Golden) -> list[Scenario]:
    def rating(code: str, score: Decimal, before: str | None, customs_credit: str = "general",
               listed: bool | None = False) -> Expect:
        fields: dict[str, Any] = {"enterprise_code": code, "score": score, "grade": domain.grade(score),
                                  "previous_grade": before, "customs_credit": customs_credit}
        if listed is not None:
            fields["negative_listed"] = listed
        return Expect(CreditRatingChanged, code, fields)

    def rejected(p: Parties, *reasons: str) -> Publish:
        order = g.order_body(p, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")
        return g.decided(order, "rejected", reasons=reasons, logistics_code=p.logistics, payment_code=p.payment)

    general, advanced, untrustworthy = g.uscc(), g.uscc(), g.uscc()
    start = domain.STARTING_SCORE

    p = g.parties()
    s0 = start["general"]
    s1 = domain.scored(s0, domain.MISMATCH_PENALTY, "general")
    s2 = domain.scored(s1, domain.PROHIBITED_GOODS_PENALTY, "general")
    s3 = domain.scored(s2, domain.PROHIBITED_GOODS_PENALTY, "general")
    assert domain.grade(s3) == "D"  # the scenario is about falling onto the negative list

    q = g.parties()
    reward = domain.scored(s0, domain.RELEASE_REWARD, "general")
    released = g.order_body(q, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")

    carrier = g.parties()
    lost = g.order_body(carrier, [FACE_CREAM], freight="12.00", discount="10.00", tax_total="85.50")
    lost_waybill = g.waybill_body(carrier, lost)

    return [
        Scenario("credit-registration",
                 "domain §9: a registration opens the credit file at 100 (general), 110 (advanced), 50 (untrustworthy)",
                 (Step(publish=(g.registered(general, ["ecommerce"]), g.registered(advanced, ["ecommerce"], "advanced"),
                                g.registered(untrustworthy, ["ecommerce"], "untrustworthy")),
                       expect=(rating(general, start["general"], None),
                               rating(advanced, start["advanced"], None, "advanced"),
                               # Whether an enterprise registered at D is listed at once, the domain does not say.
                               rating(untrustworthy, start["untrustworthy"], None, "untrustworthy", listed=None))),)),
        Scenario("credit-penalties-to-negative-list",
                 "domain §9: AMOUNT_MISMATCH -5, PROHIBITED_GOODS -20; falling to grade D puts the seller on the "
                 "negative list",
                 (Step(publish=(g.registered(p.ecommerce, ["ecommerce"]),), expect=(rating(p.ecommerce, s0, None),)),
                  Step(publish=(rejected(p, "AMOUNT_MISMATCH"),), expect=(rating(p.ecommerce, s1, "A"),)),
                  Step(publish=(rejected(p, "PROHIBITED_GOODS"),), expect=(rating(p.ecommerce, s2, "A"),)),
                  Step(publish=(rejected(p, "PROHIBITED_GOODS"),),
                       expect=(rating(p.ecommerce, s3, domain.grade(s2), listed=True),
                               Expect(NegativeListChanged, p.ecommerce, {
                                   "enterprise_code": p.ecommerce, "listed": True, "score": s3, "grade": "D"}))))),
        Scenario("credit-release-reward", "domain §9: a parcel released without any finding earns +0.1",
                 (Step(publish=(g.registered(q.ecommerce, ["ecommerce"]),), expect=(rating(q.ecommerce, s0, None),)),
                  Step(publish=(g.released(released, q, tax_mode="retail", dutiable_value_cny="362.00"),),
                       expect=(rating(q.ecommerce, reward, "A"),)))),
        Scenario("credit-waybill-exception", "domain §9: a waybill exception costs the logistics enterprise 2",
                 (Step(publish=(g.registered(carrier.logistics, ["logistics"]),),
                       expect=(rating(carrier.logistics, s0, None),)),
                  Step(publish=(g.tracked(lost_waybill, "exception", g.now, "Shanghai hub"),),
                       expect=(rating(carrier.logistics, domain.scored(s0, domain.EXCEPTION_PENALTY, "general"), "A"),)))),
    ]


# --- customs (domain §4, §5, §6, §10) --------------------------------------------------------------------


def customs_scenarios(g: Golden) -> list[Scenario]:
    def documents(p: Parties, order: dict, payment: dict | None, waybill: dict, expect: Expect) -> tuple[Step, ...]:
        publish = [*g.order_submitted(order), g.waybill_submitted(waybill)]
        if payment is not None:
            publish.insert(2, g.payment_submitted(payment))
        return (Step(publish=g.registrations(p), settle=REGISTRATION_SETTLE_SECONDS),
                Step(publish=tuple(publish), expect=(expect,)))

    def decision(order: dict, p: Parties, outcome: dict[str, Any], alternatives: tuple[dict, ...] = ()) -> Expect:
        base = {**about_order(order), "order_version": 1, "direction": order["direction"],
                "trade_mode": order["trade_mode"], "logistics_code": p.logistics}
        if order["direction"] == "import":
            base["payment_code"] = p.payment
        return Expect(CustomsDecision, order_key(order), {**base, **outcome},
                      tuple({**base, **a} for a in alternatives))

    release = {"status": "released", "channel": "green", "reasons[].code": codes()}
    inspection = {"status": "inspection", "channel": "red", "reasons[].code": codes("SELECTED_FOR_INSPECTION")}

    def released_or_inspected(order: dict, p: Parties, **fields: Any) -> Expect:
        return decision(order, p, {**release, **fields}, ({**inspection, **fields},))

    def import_case(order_kw: dict, payment_kw: dict | None = None, waybill_kw: dict | None = None,
                    items: list[dict] | None = None) -> tuple[Parties, dict, dict, dict]:
        p = g.parties()
        order = g.order_body(p, items or [FACE_CREAM], **order_kw)
        return p, order, g.payment_body(p, order, **(payment_kw or {})), g.waybill_body(p, order, **(waybill_kw or {}))

    worked = dict(freight="12.00", discount="10.00", tax_total="85.50")
    p1, o1, pay1, w1 = import_case(worked)
    p2, o2, pay2, w2 = import_case(worked, {"amount": "447.00"})
    p3, o3, pay3, w3 = import_case(worked, {"payer_id": g.resident_id()})
    p4, o4, pay4, w4 = import_case({}, items=[SHOTGUN])
    p5, o5, pay5, w5 = import_case({}, items=[item(FACE_CREAM, unit_price="3000.00")])
    p6, o6, pay6, w6 = import_case({"tax_total": "1458.00"}, items=[HANDBAG])
    p7 = g.parties()
    o7 = g.order_body(p7, [T_SHIRTS], direction="export", currency="USD", freight="4.50")
    w7 = g.waybill_body(p7, o7)

    def rejected(*required: str, tolerated: Sequence[str] = ()) -> dict[str, Any]:
        return {"status": "rejected", "reasons[].code": codes(*required, tolerated=tolerated)}

    return [
        Scenario("customs-worked-example",
                 "domain §4 three-document match and §7 example 1: order, payment and waybill agree, four parties "
                 "registered -> released (retail, dutiable value 362.00)",
                 documents(p1, o1, pay1, w1, released_or_inspected(o1, p1, tax_mode="retail",
                                                                   dutiable_value_cny=D("362.00"))),
                 note=RELEASED_OR_INSPECTED),
        Scenario("customs-amount-mismatch", "domain §4: a payment of 447.00 for an order that paid 447.50",
                 documents(p2, o2, pay2, w2, decision(o2, p2, rejected("AMOUNT_MISMATCH")))),
        Scenario("customs-identity-mismatch", "domain §4: the payer's identity number is not the buyer's",
                 documents(p3, o3, pay3, w3, decision(o3, p3, rejected("IDENTITY_MISMATCH"))),
                 note="identity numbers are sealed to --customs-public-key; a customs holding another key cannot "
                      "compare them and will find IDENTITY_MISMATCH everywhere"),
        Scenario("customs-prohibited-goods", "domain §6: an import of a prohibited code (9303200000, shotguns)",
                 documents(p4, o4, pay4, w4,
                           decision(o4, p4, rejected("PROHIBITED_GOODS", tolerated=["NOT_ON_POSITIVE_LIST"]))),
                 note="the code is also off the positive list; NOT_ON_POSITIVE_LIST beside PROHIBITED_GOODS is accepted"),
        Scenario("customs-over-single-limit",
                 "domain §5: two face creams worth 6,000.00, not a single indivisible item -> OVER_SINGLE_LIMIT",
                 documents(p5, o5, pay5, w5, decision(o5, p5, rejected("OVER_SINGLE_LIMIT")))),
        Scenario("customs-single-item-general-trade",
                 "domain §5: one handbag of 6,000.00 is a single indivisible item -> released as general trade",
                 documents(p6, o6, pay6, w6, released_or_inspected(o6, p6, tax_mode="general_trade",
                                                                   dutiable_value_cny=D("6000.00"))),
                 note=RELEASED_OR_INSPECTED),
        Scenario("customs-export", "domain §4: an export needs only the order and the waybill",
                 documents(p7, o7, None, w7, released_or_inspected(o7, p7)), note=RELEASED_OR_INSPECTED),
    ]


SCENARIOS: dict[str, Callable[[Golden], list[Scenario]]] = {
    "tax": tax_scenarios, "fx": fx_scenarios, "logistics": logistics_scenarios, "credit": credit_scenarios,
    "customs": customs_scenarios,
}
# The roles the suite can play: the agencies it has golden scenarios for (an agency without any, such as
# quarantine, is not a role; the list of services is shared/registry.py's).
ROLES = tuple(SCENARIOS)


def scenarios_for(role: str, golden: Golden) -> list[Scenario]:
    if role not in SCENARIOS:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return SCENARIOS[role](golden)


# --- a good document set, for the platform mode and for anyone learning the formats ----------------------

_KIND_OF_MODEL = {"EnterpriseRegistration": "enterprise", "OrderIn": "order", "PaymentIn": "payment",
                  "WaybillIn": "waybill", "TrackingEventIn": "tracking"}


def example_documents() -> dict[str, dict]:
    """File name -> REST body: the contract examples a platform, payment firm or logistics firm submits
    (`contracts/examples.py`): five registrations, an import (order, payment, waybill), an export (order,
    waybill) and two tracking events. Every document is valid and the set is consistent."""
    return {f"{_KIND_OF_MODEL[case.model]}-{case.name}.json": copy.deepcopy(case.body)
            for case in examples.REST_CASES if case.model in _KIND_OF_MODEL}
