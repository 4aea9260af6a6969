"""Contract examples: valid documents for every REST body and every event type and version.

They tell one story, so that they can serve as golden inputs (the contract suite plays them) and as the
`examples` of the published schemas:

- the import order of the spec (§4.1) and of domain rules §7 worked example 1: face cream `3304990099`,
  2 x 180.00, freight 12.00, discount 10.00, declared tax_total 85.50, actual_paid 447.50, bought by
  Zhang San (110101199003070011, `1101**********0011` outside customs), paid by him (447.50) and carried
  by one waybill (freight 12.00): the three documents agree, customs releases it (green), tax assesses
  dutiable value 362.00, VAT 38.76, consumption tax 44.72, total 83.48 (declared 2.02 more), FX settles
  447.50 CNY at 7.1300 = USD 62.76, the seller's credit gains 0.1;
- a 9610 retail export of T-shirts by a Hangzhou firm that sells on its own platform: released, tax-exempt
  (domain §8), settled in USD, taking the firm over the USD 200,000 directory threshold (domain §11), and
  consolidated with the month's other parcels (domain §12);
- a seller rejected for prohibited goods and put on the negative list (domain §9), and a waybill whose
  order never came.

Event payloads are written exactly as producers serialize them (`model_dump(mode="json")`: money as
strings with two decimals, times in RFC 3339, every field present), so they are what a consumer reads off
the topic. REST bodies are written as a platform would send them. Sealed identity numbers are X25519
sealed boxes to the development public key (shared/settings.py DEV_CUSTOMS_SEALING_PUBLIC_KEY), so customs in
a development mesh can open them.
"""
from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from contracts.topics import EVENT_TYPES, TOPICS

# --- the parties ---------------------------------------------------------------------------------

PLATFORM = "91350100M000100Y43"  # domain §13's example USCC
SELLER = "FR-LUMIERE-0001"  # a foreign seller: any 1-32 character code, country not CN
PAYMENT_FIRM = "91310115MA1K4B2C3J"
LOGISTICS_FIRM = "91440300MA5F8L6Q2N"
EXPORTER = "91330100MA27U8AA1U"  # spec §3's example; platform and ecommerce at once (sells on its own site)
LISTED_SELLER = "91440101MA9XK3PD7N"

BUYER_ID_NUMBER = "110101199003070011"
BUYER_ID_MASKED = "1101**********0011"
# seal(BUYER_ID_NUMBER) to the development public key: one token for the order, one for the payment (each
# sealing draws its own ephemeral key, so the same number never gives the same token twice).
BUYER_ID_SEALED = ("FR7w8L5XtzjGhqZQgzxQznxQNH6tAlFszhwHaLMcEgMa5C2nywckbr6HiCnX"
                   "absxOo86ecy_dhYXH5iF72Z1r66e")
PAYER_ID_SEALED = ("I6iQQzlmPp7gKXZ7KqMcWG8O9ZzrsXdcypW_CFgK10Fr3ifU3iUYhu39PcNf"
                   "m38OthcPGoRA8Q1LfCzqVuRgCkFk")

IMPORT_ORDER_NO = "ORD-20261124-000001"
IMPORT_KEY = f"{PLATFORM}:{IMPORT_ORDER_NO}"
PAYMENT_NO = "PAY-20261124-0001"
IMPORT_WAYBILL_NO = "SF1234567890"

EXPORT_ORDER_NO = "ORD-20261125-000017"
EXPORT_KEY = f"{EXPORTER}:{EXPORT_ORDER_NO}"
EXPORT_WAYBILL_NO = "SF1234567901"

PROHIBITED_ORDER_NO = "ORD-20261124-000388"
PROHIBITED_KEY = f"{PLATFORM}:{PROHIBITED_ORDER_NO}"
ORPHAN_WAYBILL_NO = "SF1234560001"
ORPHAN_ORDER_NO = "ORD-20261120-000950"


@dataclass(frozen=True)
class RestExample:
    model: str  # the REST body model's name in contracts.v1.documents
    name: str  # machine-friendly, unique per model
    summary: str
    body: dict


@dataclass(frozen=True)
class EventExample:
    event: tuple[str, int]  # (event type, version), a key of contracts.topics.EVENT_TYPES
    name: str  # machine-friendly, unique per event type and version
    summary: str
    correlation_id: str  # the envelope's correlation id
    key: str  # the Kafka record key (the enterprise code for enterprise events; see EventType.key)
    payload: dict


# --- REST bodies (spec §3, §4, §5a) ------------------------------------------------------------

CONSIGNEE = {"name": "Zhang San", "phone": "13800000000",
             "address": "Room 1201, 8 Jianguomen Inner Street, Dongcheng District, Beijing", "country": "CN"}
US_CONSIGNEE = {"name": "Emily Johnson", "phone": "+1 206 555 0143",
                "address": "1420 Fifth Avenue, Seattle, WA 98101", "country": "US"}

IMPORT_ORDER_IN = {
    "order_no": IMPORT_ORDER_NO,
    "platform_code": PLATFORM,
    "ecommerce_code": SELLER,
    "direction": "import",
    "trade_mode": "9610",
    "currency": "CNY",
    "items": [
        {"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": "2", "unit": "piece",
         "unit_price": "180.00", "origin_country": "FR", "brand": "Lumière"},
    ],
    "freight": "12.00",
    "insurance": "0.00",
    "discount": "10.00",
    "tax_total": "85.50",
    "actual_paid": "447.50",
    "buyer": {"name": "Zhang San", "id_type": "resident_id", "id_number": BUYER_ID_NUMBER, "phone": "13800000000"},
    "consignee": CONSIGNEE,
    "destination_country": None,
}

EXPORT_ORDER_IN = {
    "order_no": EXPORT_ORDER_NO,
    "platform_code": EXPORTER,
    "ecommerce_code": EXPORTER,
    "direction": "export",
    "trade_mode": "9610",
    "currency": "USD",
    "items": [
        {"item_no": "TS-0042-M", "name": "Cotton T-shirt, knitted, size M", "hs_code": "6109100022", "quantity": "3",
         "unit": "piece", "unit_price": "12.50", "origin_country": "CN"},
    ],
    "freight": "4.50",
    "insurance": "0.00",
    "discount": "0.00",
    "tax_total": "0.00",
    "actual_paid": "42.00",
    "consignee": US_CONSIGNEE,
    "destination_country": "US",
}

PAYMENT_IN = {
    "payment_no": PAYMENT_NO,
    "payment_code": PAYMENT_FIRM,
    "order_no": IMPORT_ORDER_NO,
    "platform_code": PLATFORM,
    "amount": "447.50",
    "currency": "CNY",
    "payer": {"name": "Zhang San", "id_type": "resident_id", "id_number": BUYER_ID_NUMBER},
    "paid_at": "2026-11-24T10:00:00+08:00",
}

IMPORT_WAYBILL_IN = {
    "waybill_no": IMPORT_WAYBILL_NO,
    "logistics_code": LOGISTICS_FIRM,
    "order_no": IMPORT_ORDER_NO,
    "platform_code": PLATFORM,
    "freight": "12.00",
    "insured_fee": "0.00",
    "gross_weight_kg": "0.45",
    "package_count": 1,
    "consignee": CONSIGNEE,
}

EXPORT_WAYBILL_IN = {
    "waybill_no": EXPORT_WAYBILL_NO,
    "logistics_code": LOGISTICS_FIRM,
    "order_no": EXPORT_ORDER_NO,
    "platform_code": EXPORTER,
    "freight": "4.50",
    "insured_fee": "0.00",
    "gross_weight_kg": "0.6",
    "package_count": 1,
    "consignee": US_CONSIGNEE,
}

PICKED_UP_IN = {"event": "picked_up", "at": "2026-11-24T16:00:00+01:00", "location": "Roissy-en-France, FR",
                "note": "collected from the seller's warehouse"}
DELIVERED_IN = {"event": "delivered", "at": "2026-11-28T15:20:00+08:00", "location": "Dongcheng District, Beijing",
                "note": "signed for by Zhang San"}

REST_CASES: tuple[RestExample, ...] = (
    RestExample("EnterpriseRegistration", "platform", "a Chinese e-commerce platform (USCC code)", {
        "code": PLATFORM, "name": "Fuzhou Example Cross-border Platform Co., Ltd.", "roles": ["platform"],
        "country": "CN", "customs_credit": "general"}),
    RestExample("EnterpriseRegistration", "foreign_seller", "a foreign seller: any 1-32 character code", {
        "code": SELLER, "name": "Lumière Cosmétiques SAS", "roles": ["ecommerce"], "country": "FR",
        "customs_credit": "general"}),
    RestExample("EnterpriseRegistration", "payment_firm", "a payment firm; customs_credit defaults to general", {
        "code": PAYMENT_FIRM, "name": "Shanghai Example Payment Services Co., Ltd.", "roles": ["payment"],
        "country": "CN"}),
    RestExample("EnterpriseRegistration", "logistics_firm", "a logistics firm with AEO (advanced) status", {
        "code": LOGISTICS_FIRM, "name": "Shenzhen Example Express Co., Ltd.", "roles": ["logistics"],
        "country": "CN", "customs_credit": "advanced"}),
    RestExample("EnterpriseRegistration", "exporter", "spec §3: a platform that is also the seller", {
        "code": EXPORTER, "name": "Hangzhou Example Trading Co., Ltd.", "roles": ["platform", "ecommerce"],
        "country": "CN", "customs_credit": "general"}),
    RestExample("OrderIn", "import_9610", "domain §7 worked example 1: 2 x 180.00 + 12.00 - 10.00 + 85.50 = 447.50",
                IMPORT_ORDER_IN),
    RestExample("OrderIn", "export_9610", "a retail export to the US: 3 x 12.50 + 4.50 = 42.00 USD",
                EXPORT_ORDER_IN),
    RestExample("PaymentIn", "import_payment", "the buyer pays actual_paid", PAYMENT_IN),
    RestExample("WaybillIn", "import_waybill", "the waybill's freight is the order's", IMPORT_WAYBILL_IN),
    RestExample("WaybillIn", "export_waybill", "exports need the order and the waybill only", EXPORT_WAYBILL_IN),
    RestExample("OrderBatchIn", "two_orders", "spec §7.1: an import and an export in one request",
                {"documents": [IMPORT_ORDER_IN, EXPORT_ORDER_IN]}),
    RestExample("PaymentBatchIn", "one_payment", "spec §7.1: a batch of one is a batch too",
                {"documents": [PAYMENT_IN]}),
    RestExample("WaybillBatchIn", "two_waybills", "spec §7.1: the waybills of the import and the export",
                {"documents": [IMPORT_WAYBILL_IN, EXPORT_WAYBILL_IN]}),
    RestExample("TrackingEventIn", "picked_up", "collected from the seller", PICKED_UP_IN),
    RestExample("TrackingEventIn", "delivered", "delivered to the buyer", DELIVERED_IN),
    RestExample("WebhookIn", "status_changes", "spec §7.3: push every change of my orders' one-stop view",
                {"url": "https://hooks.example.com/single-window", "events": ["order.status_changed"]}),
    RestExample("InspectionResultIn", "pass", "the inspector found nothing: released",
                {"result": "pass", "note": "contents match the order; 2 jars of face cream"}),
    RestExample("InspectionResultIn", "fail", "the inspector found a problem: rejected",
                {"result": "fail", "note": "undeclared second item in the parcel"}),
)

# --- event payloads (spec §6), as producers serialize them --------------------------------------


def _registered(code: str, name: str, roles: list[str], country: str, customs_credit: str, at: str,
                customs_code: str | None = None) -> dict:
    return {"code": code, "name": name, "roles": roles, "country": country, "customs_credit": customs_credit,
            "registered_at": at, "customs_code": customs_code}


IMPORT_ORDER = {
    "order_no": IMPORT_ORDER_NO,
    "platform_code": PLATFORM,
    "ecommerce_code": SELLER,
    "direction": "import",
    "trade_mode": "9610",
    "currency": "CNY",
    "items": [
        {"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": "2", "unit": "piece",
         "unit_price": "180.00", "origin_country": "FR"},
    ],
    "freight": "12.00",
    "insurance": "0.00",
    "discount": "10.00",
    "tax_total": "85.50",
    "actual_paid": "447.50",
    "buyer": {"name": "Zhang San", "id_type": "resident_id", "id_number_masked": BUYER_ID_MASKED,
              "id_number_sealed": BUYER_ID_SEALED, "phone": "13800000000"},
    "consignee": CONSIGNEE,
    "destination_country": None,
    "payment_code": None,  # spec §7.2: the firms an order may name (none named here)
    "payment_transaction_id": None,
    "logistics_code": None,
}

EXPORT_ORDER = {
    "order_no": EXPORT_ORDER_NO,
    "platform_code": EXPORTER,
    "ecommerce_code": EXPORTER,
    "direction": "export",
    "trade_mode": "9610",
    "currency": "USD",
    "items": [
        {"item_no": "TS-0042-M", "name": "Cotton T-shirt, knitted, size M", "hs_code": "6109100022", "quantity": "3",
         "unit": "piece", "unit_price": "12.50", "origin_country": "CN"},
    ],
    "freight": "4.50",
    "insurance": "0.00",
    "discount": "0.00",
    "tax_total": "0.00",
    "actual_paid": "42.00",
    "buyer": None,
    "consignee": US_CONSIGNEE,
    "destination_country": "US",
    "payment_code": None,  # spec §7.2: the firms an order may name (none named here)
    "payment_transaction_id": None,
    "logistics_code": None,
}


def _cny(amount: str) -> dict:
    return {"amount": amount, "currency": "CNY"}


IMPORT_ORDER_V2 = {
    "order_no": IMPORT_ORDER_NO,
    "platform": {"code": PLATFORM, "country": "CN"},
    "ecommerce": {"code": SELLER, "country": "FR"},
    "direction": "import",
    "trade_mode": "9610",
    "items": [
        {"item_no": "SKU-1", "name": "Face cream 50ml", "brand": "Lumière", "hs_code": "3304990099", "quantity": "2",
         "unit": "piece", "unit_price": _cny("180.00"), "origin_country": "FR"},
    ],
    "freight": _cny("12.00"),
    "insurance": _cny("0.00"),
    "discount": _cny("10.00"),
    "tax_total": _cny("85.50"),
    "actual_paid": _cny("447.50"),
    "buyer": IMPORT_ORDER["buyer"],
    "consignee": CONSIGNEE,
    "destination_country": None,
    "payment_code": None,  # spec §7.2: the firms an order may name (none named here)
    "payment_transaction_id": None,
    "logistics_code": None,
}

IMPORT_WAYBILL = {**IMPORT_WAYBILL_IN}
EXPORT_WAYBILL = {**EXPORT_WAYBILL_IN}

_ORDER_TRACKED = {"waybill_no": IMPORT_WAYBILL_NO, "logistics_code": LOGISTICS_FIRM, "order_no": IMPORT_ORDER_NO,
                  "platform_code": PLATFORM}
_IMPORT_SHIPMENT = {"logistics_code": LOGISTICS_FIRM, "waybill_no": IMPORT_WAYBILL_NO, "platform_code": PLATFORM,
                    "order_no": IMPORT_ORDER_NO}

EVENT_CASES: tuple[EventExample, ...] = (
    # sw.enterprise.registered.v1 (gateway)
    EventExample(("enterprise.registered", 1), "platform", "the platform registered, with its customs code",
                 PLATFORM, PLATFORM,
                 _registered(PLATFORM, "Fuzhou Example Cross-border Platform Co., Ltd.", ["platform"], "CN",
                             "general", "2026-11-20T01:00:00Z", customs_code="3501960001")),
    EventExample(("enterprise.registered", 1), "foreign_seller", "a foreign seller registered", SELLER, SELLER,
                 _registered(SELLER, "Lumière Cosmétiques SAS", ["ecommerce"], "FR", "general",
                             "2026-11-20T01:02:00Z")),
    EventExample(("enterprise.registered", 1), "exporter", "a platform that is also the seller", EXPORTER, EXPORTER,
                 _registered(EXPORTER, "Hangzhou Example Trading Co., Ltd.", ["platform", "ecommerce"], "CN",
                             "general", "2026-01-05T02:00:00Z")),
    # sw.order.submitted.v1 (gateway)
    EventExample(("order.submitted", 1), "import_new", "domain §7 example 1; the buyer's id masked and sealed",
                 IMPORT_KEY, IMPORT_KEY,
                 {"action": "new", "version": 1, "submitted_at": "2026-11-24T02:00:00Z", "order": IMPORT_ORDER}),
    EventExample(("order.submitted", 1), "export_new", "a retail export to the US, in USD", EXPORT_KEY, EXPORT_KEY,
                 {"action": "new", "version": 1, "submitted_at": "2026-11-25T06:40:00Z", "order": EXPORT_ORDER}),
    # sw.order.submitted.v2 (gateway, dual-published with v1)
    EventExample(("order.submitted", 2), "import_new", "the same import order, money as {amount, currency}",
                 IMPORT_KEY, IMPORT_KEY,
                 {"action": "new", "version": 1, "submitted_at": "2026-11-24T02:00:00Z", "order": IMPORT_ORDER_V2}),
    # sw.payment.submitted.v1 (gateway)
    EventExample(("payment.submitted", 1), "import_payment", "the buyer paid actual_paid", IMPORT_KEY, IMPORT_KEY, {
        "submitted_at": "2026-11-24T02:05:00Z",
        "payment": {
            "payment_no": PAYMENT_NO, "payment_code": PAYMENT_FIRM, "order_no": IMPORT_ORDER_NO,
            "platform_code": PLATFORM, "amount": "447.50", "currency": "CNY",
            "payer": {"name": "Zhang San", "id_type": "resident_id", "id_number_masked": BUYER_ID_MASKED,
                      "id_number_sealed": PAYER_ID_SEALED, "phone": None},
            "paid_at": "2026-11-24T10:00:00+08:00",
        },
    }),
    # sw.waybill.submitted.v1 (gateway)
    EventExample(("waybill.submitted", 1), "import_waybill", "the third document: customs can decide", IMPORT_KEY,
                 IMPORT_KEY, {"submitted_at": "2026-11-24T03:30:00Z", "waybill": IMPORT_WAYBILL}),
    EventExample(("waybill.submitted", 1), "export_waybill", "an export's second and last document", EXPORT_KEY,
                 EXPORT_KEY, {"submitted_at": "2026-11-25T07:10:00Z", "waybill": EXPORT_WAYBILL}),
    EventExample(("waybill.tracked", 1), "picked_up", "the firm collected the parcel", IMPORT_KEY, IMPORT_KEY,
                 {**_ORDER_TRACKED, **PICKED_UP_IN}),
    EventExample(("waybill.tracked", 1), "delivered", "the parcel reached the buyer", IMPORT_KEY, IMPORT_KEY,
                 {**_ORDER_TRACKED, **DELIVERED_IN}),
    # customs.decision.v1 (customs)
    EventExample(("customs.decision", 1), "import_released", "three documents agree, within limits: released green",
                 IMPORT_KEY, IMPORT_KEY, {
                     "platform_code": PLATFORM, "order_no": IMPORT_ORDER_NO, "order_version": 1,
                     "ecommerce_code": SELLER, "logistics_code": LOGISTICS_FIRM, "payment_code": PAYMENT_FIRM,
                     "direction": "import", "trade_mode": "9610", "status": "released", "channel": "green",
                     "reasons": [], "tax_mode": "retail", "dutiable_value_cny": "362.00",
                     "documents_complete_at": "2026-11-24T03:30:00.412000Z",
                     "decided_at": "2026-11-24T03:30:00.418000Z"}),
    EventExample(("customs.decision", 1), "export_released", "an export: order and waybill, no payment, no value",
                 EXPORT_KEY, EXPORT_KEY, {
                     "platform_code": EXPORTER, "order_no": EXPORT_ORDER_NO, "order_version": 1,
                     "ecommerce_code": EXPORTER, "logistics_code": LOGISTICS_FIRM, "payment_code": None,
                     "direction": "export", "trade_mode": "9610", "status": "released", "channel": "green",
                     "reasons": [], "tax_mode": None, "dutiable_value_cny": None,
                     "documents_complete_at": "2026-11-25T07:10:00.305000Z",
                     "decided_at": "2026-11-25T07:10:00.311000Z"}),
    EventExample(("customs.decision", 1), "import_rejected_prohibited", "a prohibited line: rejected, no channel",
                 PROHIBITED_KEY, PROHIBITED_KEY, {
                     "platform_code": PLATFORM, "order_no": PROHIBITED_ORDER_NO, "order_version": 1,
                     "ecommerce_code": LISTED_SELLER, "logistics_code": LOGISTICS_FIRM,
                     "payment_code": PAYMENT_FIRM, "direction": "import", "trade_mode": "9610",
                     "status": "rejected", "channel": None,
                     "reasons": [{"code": "PROHIBITED_GOODS",
                                  "message": "items[0] 9304000000 (Other arms, air guns) is prohibited"}],
                     "tax_mode": None, "dutiable_value_cny": "1280.00",
                     "documents_complete_at": "2026-11-24T05:12:09.120000Z",
                     "decided_at": "2026-11-24T05:12:09.127000Z"}),
    EventExample(("customs.export_declarations", 1), "monthly", "domain §12: one line per (seller, HS code, "
                 "destination, currency)", EXPORTER, EXPORTER, {
                     "month": "2026-11", "ecommerce_code": EXPORTER,
                     "declarations": [
                         {"ecommerce_code": EXPORTER, "hs_code": "6109100022", "destination_country": "US",
                          "currency": "USD", "quantity": "1250", "value": "15625.00", "parcel_count": 417,
                          "legal_quantities": [
                              {"position": 1, "unit": "piece", "quantity": "1250", "parcel_count": 417},
                              {"position": 2, "unit": "kg", "quantity": "312.5", "parcel_count": 417}],
                          "legal_quantities_status": "complete", "legal_quantities_issues": [],
                          "legal_quantities_note": None},
                         {"ecommerce_code": EXPORTER, "hs_code": "6109100022", "destination_country": "GB",
                          "currency": "USD", "quantity": "96", "value": "1200.00", "parcel_count": 40,
                          "legal_quantities": [
                              {"position": 1, "unit": "piece", "quantity": "72", "parcel_count": 30},
                              {"position": 2, "unit": "kg", "quantity": "18", "parcel_count": 30}],
                          "legal_quantities_status": "incomplete", "legal_quantities_issues": ["LEGAL_QUANTITIES_MISSING"],
                          "legal_quantities_note": "10 of 40 parcels have lines without legal quantities; "
                                                   "the totals cover the other lines only"},
                     ],
                     "consolidated_at": "2026-12-01T00:05:00Z", "part": 1, "parts": 1}),
    # tax.assessment.v1 (tax)
    EventExample(("tax.assessment", 1), "import_assessed", "domain §7 example 1: 362.00, 0.00, 38.76, 44.72, 83.48",
                 IMPORT_KEY, IMPORT_KEY, {
                     "platform_code": PLATFORM, "order_no": IMPORT_ORDER_NO, "order_version": 1,
                     "ecommerce_code": SELLER, "status": "assessed", "currency": "CNY",
                     "dutiable_value": "362.00", "customs_duty": "0.00", "vat": "38.76", "consumption_tax": "44.72",
                     "total": "83.48", "declared_tax_total": "85.50", "declared_difference": "2.02",
                     "lines": [{"item_no": "SKU-1", "hs_code": "3304990099", "dutiable_value": "362.00",
                                "customs_duty": "0.00", "consumption_tax": "44.7176470588", "vat": "38.7552941176"}],
                     "assessed_at": "2026-11-24T03:30:00.530000Z"}),
    EventExample(("tax.assessment", 1), "export_exempt", "domain §8: a released retail export is exempt", EXPORT_KEY,
                 EXPORT_KEY, {
                     "platform_code": EXPORTER, "order_no": EXPORT_ORDER_NO, "order_version": 1,
                     "ecommerce_code": EXPORTER, "status": "exempt", "currency": "CNY", "dutiable_value": None,
                     "customs_duty": None, "vat": None, "consumption_tax": None, "total": None,
                     "declared_tax_total": None, "declared_difference": None, "lines": [],
                     "assessed_at": "2026-11-25T07:10:00.420000Z"}),
    # fx.settlement.v1 (fx)
    EventExample(("fx.settlement", 1), "import_settled", "domain §11: 447.50 CNY / 7.1300 = USD 62.76", IMPORT_KEY,
                 IMPORT_KEY, {
                     "platform_code": PLATFORM, "order_no": IMPORT_ORDER_NO, "ecommerce_code": SELLER,
                     "status": "settled", "amount": "447.50", "currency": "CNY", "amount_cny": "447.50",
                     "rate": "7.1300", "rate_date": "2026-11-01", "amount_usd": "62.76", "year": 2026,
                     "year_to_date_usd": "62.76", "directory_status": "exempt",
                     "settled_at": "2026-11-24T03:30:00.540000Z", "enterprise_revision": 2026_000_000_001}),
    EventExample(("fx.settlement", 1), "export_settled", "42.00 USD settled; the year crosses USD 200,000",
                 EXPORT_KEY, EXPORT_KEY, {
                     "platform_code": EXPORTER, "order_no": EXPORT_ORDER_NO, "ecommerce_code": EXPORTER,
                     "status": "settled", "amount": "42.00", "currency": "USD", "amount_cny": "299.46",
                     "rate": "7.1300", "rate_date": "2026-11-01", "amount_usd": "42.00", "year": 2026,
                     "year_to_date_usd": "200012.40", "directory_status": "registration_required",
                     "settled_at": "2026-11-25T07:10:00.430000Z", "enterprise_revision": 2026_000_004_763}),
    EventExample(("fx.directory_status", 1), "registration_required",
                 "domain §11: the year total reached USD 200,000", EXPORT_KEY, EXPORTER, {
                     "enterprise_code": EXPORTER, "year": 2026, "status": "registration_required",
                     "previous_status": "exempt", "year_to_date_usd": "200012.40",
                     "changed_at": "2026-11-25T07:10:00.430000Z", "enterprise_revision": 2026_000_004_763}),
    # logistics.status.v1 (logistics)
    EventExample(("logistics.status", 1), "created", "the waybill opened the shipment", IMPORT_KEY, IMPORT_KEY,
                 {**_IMPORT_SHIPMENT, "status": "created", "previous_status": None,
                  "at": "2026-11-24T03:30:00.409000Z", "location": ""}),
    EventExample(("logistics.status", 1), "cleared", "customs released the parcel", IMPORT_KEY, IMPORT_KEY,
                 {**_IMPORT_SHIPMENT, "status": "cleared", "previous_status": "created",
                  "at": "2026-11-24T03:30:00.418000Z", "location": ""}),
    EventExample(("logistics.status", 1), "delivered", "the firm reported delivery", IMPORT_KEY, IMPORT_KEY,
                 {**_IMPORT_SHIPMENT, "status": "delivered", "previous_status": "cleared",
                  "at": "2026-11-28T15:20:00+08:00", "location": "Dongcheng District, Beijing"}),
    EventExample(("logistics.anomaly", 1), "order_never_came", "a waybill whose order did not come within 72 hours",
                 f"{PLATFORM}:{ORPHAN_ORDER_NO}", f"{PLATFORM}:{ORPHAN_ORDER_NO}", {
                     "logistics_code": LOGISTICS_FIRM, "waybill_no": ORPHAN_WAYBILL_NO, "platform_code": PLATFORM,
                     "order_no": ORPHAN_ORDER_NO, "anomaly": "ORDER_NEVER_CAME",
                     "detail": f"waybill {ORPHAN_WAYBILL_NO} of {LOGISTICS_FIRM} arrived at "
                               f"2026-11-20T08:15:00+00:00; no order {ORPHAN_ORDER_NO} of platform {PLATFORM} "
                               "after 72 hours",
                     "at": "2026-11-23T08:15:30Z"}),
    # credit.rating.v1 (credit)
    EventExample(("credit.rating", 1), "released_without_finding", "domain §9: +0.1 for a clean release", SELLER,
                 SELLER, {
                     "enterprise_code": SELLER, "score": "100.1", "grade": "A", "previous_grade": "A",
                     "customs_credit": "general", "negative_listed": False,
                     "reason": f"order {IMPORT_KEY} released without finding",
                     "changed_at": "2026-11-24T03:30:00.560000Z", "enterprise_revision": 2}),
    EventExample(("credit.rating", 1), "fell_to_d", "domain §9: -20 for prohibited goods takes a B seller to D",
                 LISTED_SELLER, LISTED_SELLER, {
                     "enterprise_code": LISTED_SELLER, "score": "58.0", "grade": "D", "previous_grade": "B",
                     "customs_credit": "general", "negative_listed": True,
                     "reason": f"order {PROHIBITED_KEY} rejected: PROHIBITED_GOODS",
                     "changed_at": "2026-11-24T05:12:09.300000Z", "enterprise_revision": 5}),
    EventExample(("credit.negative_list", 1), "listed", "at D after a penalty: on the negative list", LISTED_SELLER,
                 LISTED_SELLER, {
                     "enterprise_code": LISTED_SELLER, "listed": True, "score": "58.0", "grade": "D",
                     "reason": f"grade D after order {PROHIBITED_KEY} rejected: PROHIBITED_GOODS",
                     "changed_at": "2026-11-24T05:12:09.300000Z", "enterprise_revision": 6}),
    # quarantine.status.v1 (quarantine)
    EventExample(("quarantine.status", 1), "held", "a line of HS chapter 03 (fish): held for inspection",
                 f"{PLATFORM}:ORD-20261124-000412", f"{PLATFORM}:ORD-20261124-000412", {
                     "platform_code": PLATFORM, "order_no": "ORD-20261124-000412", "order_version": 1,
                     "status": "held", "chapters": ["03"], "decided_at": "2026-11-24T03:41:00.420000Z",
                     "reasons": [{"code": "ANIMAL_OR_PLANT_GOODS", "message": "HS chapter 03"}]}),
    EventExample(("quarantine.status", 1), "cleared", "face cream (HS 3304): no line in chapters 01-14",
                 IMPORT_KEY, IMPORT_KEY, {"platform_code": PLATFORM, "order_no": IMPORT_ORDER_NO, "order_version": 1,
                                          "status": "cleared", "chapters": [], "reasons": [],
                                          "decided_at": "2026-11-24T03:30:00.420000Z"}),
    # sw.order.status_changed.v1 (gateway, for its own webhook dispatcher)
    EventExample(("order.status_changed", 1), "released", "customs released the import: its view changed",
                 IMPORT_KEY, IMPORT_KEY,
                 {"platform_code": PLATFORM, "order_no": IMPORT_ORDER_NO, "version": 1, "sources": ["customs"],
                  "changed_at": "2026-11-24T03:30:00.500000Z"}),
    EventExample(("order.status_changed", 1), "cancelled", "the platform cancelled the export",
                 EXPORT_KEY, EXPORT_KEY,
                 {"platform_code": EXPORTER, "order_no": EXPORT_ORDER_NO, "version": 2, "sources": ["gateway"],
                  "changed_at": "2026-11-25T07:00:00Z"}),
)


def _payloads_by_event(cases: tuple[EventExample, ...]) -> dict[tuple[str, int], list[dict]]:
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for case in cases:
        grouped[case.event].append(case.payload)
    return dict(grouped)


def _bodies_by_model(cases: tuple[RestExample, ...]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for case in cases:
        grouped[case.model].append(case.body)
    return dict(grouped)


EVENT_EXAMPLES: dict[tuple[str, int], list[dict]] = _payloads_by_event(EVENT_CASES)
REST_EXAMPLES: dict[str, list[dict]] = _bodies_by_model(REST_CASES)


# --- whole records: envelope and headers, as the outbox writes them (shared/outbox.py) -----------

_EXAMPLE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "single-window:contracts:examples")
# The payload field that says when the producer built the event, by preference; the envelope's
# `occurred_at` is that instant in UTC.
_EVENT_TIME_FIELDS = ("submitted_at", "registered_at", "decided_at", "assessed_at", "settled_at", "changed_at",
                      "consolidated_at", "at")


def writer_of(event: tuple[str, int]) -> str:
    topic = EVENT_TYPES[event].topic
    return next(t.writer for t in TOPICS if t.name == topic)


def _occurred_at(payload: dict) -> str:
    stamp = next(payload[f] for f in _EVENT_TIME_FIELDS if f in payload)
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc)
    return at.isoformat().replace("+00:00", "Z")


def envelope_of(case: EventExample) -> dict:
    """The envelope (spec §6) that carries `case` on its topic; ids and times are stable, not random."""
    name, version = case.event
    return {
        "event_id": str(uuid.uuid5(_EXAMPLE_NAMESPACE, f"{name}.v{version}/{case.name}")),
        "type": name,
        "version": version,
        "occurred_at": _occurred_at(case.payload),
        "source": writer_of(case.event),
        "correlation_id": case.correlation_id,
        "payload": case.payload,
    }


def headers_of(case: EventExample) -> dict[str, str]:
    """The Kafka headers of the record (all strings), with a W3C traceparent shared by one correlation id."""
    name, version = case.event
    trace_id = hashlib.sha256(case.correlation_id.encode()).hexdigest()[:32]
    span_id = hashlib.sha256(f"{name}.v{version}/{case.name}".encode()).hexdigest()[:16]
    return {"type": name, "version": str(version), "source": writer_of(case.event),
            "correlation_id": case.correlation_id, "traceparent": f"00-{trace_id}-{span_id}-01"}
