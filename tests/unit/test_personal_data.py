"""Personal data outside customs (spec §6, §7.2; issue 9 item 4): the masked form of every identity type,
masked again on receipt, names kept out of published reasons and notes, and log lines masked."""
from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identifiers import is_masked_id_number, mask_id_number, redact
from contracts.v1.events import Reason, SealedPerson
from services.customs.rules import inspection_outcome
from shared.logs import JsonFormatter, mask_personal_data

ID_CHARS = st.text(alphabet="0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=1, max_size=32)


# --- the masked form (spec §7.2) -----------------------------------------------------------------


@pytest.mark.parametrize(("number", "masked"), [
    ("110101199003070011", "1101**********0011"),  # the spec's example: resident id, 18 characters
    ("11010519491231002X", "1101**********002X"),
    ("E12345678", "*******78"),                    # the passport: was E123*5678
    ("EA1234567", "*******67"),
    ("K1234567", "******67"),                      # other, 8 characters
    ("12345678901", "*********01"),                # 11 characters: still short, last 2 only
    ("123456789012", "123******012"),              # 12: 4+4 would show 8 of 12, so 3+3
    ("1234567890123456", "1234********3456"),      # 16: 4+4 is exactly half
    ("X1234567890123456789012345678901", "X123************************8901"),
    ("AB", "*B"), ("A", "*"),                      # never more than half shown
])
def test_masked_form_of_every_identity_type(number, masked):
    assert mask_id_number(number) == masked


@given(ID_CHARS)
def test_masking_follows_the_spec_rule_for_any_number(number):
    masked = mask_id_number(number)
    assert len(masked) == len(number)
    shown = [i for i, ch in enumerate(masked) if ch != "*"]
    assert all(masked[i] == number[i] for i in shown)
    assert 2 * masked.count("*") >= len(number)                  # at least half masked
    if len(number) < 12:
        assert all(i >= len(number) - 2 for i in shown)          # only the last 2
    else:
        assert all(i < 4 or i >= len(number) - 4 for i in shown)  # at most first 4 and last 4
    assert mask_id_number(masked) == masked and is_masked_id_number(masked)


@pytest.mark.parametrize(("received", "kept"), [
    ("E123*5678", "*******78"),                    # the 1.0 form of a passport: masked again
    ("E12345678", "*******78"),                    # a careless producer's full number
    ("110101199003070011", "1101**********0011"),
    ("1101**********0011", "1101**********0011"),  # a proper masked value is unchanged
    ("1101*********00011", "1101**********0011"),  # half-masked resident id: more masked
])
def test_the_masked_field_never_passes_a_half_masked_value_through(received, kept):
    person = SealedPerson(name="Zhang San", id_type="passport", id_number_masked=received, id_number_sealed="x")
    assert person.id_number_masked == kept
    assert json.loads(person.model_dump_json())["id_number_masked"] == kept


# --- names and numbers out of published text --------------------------------------------------------


def test_redact_takes_out_known_names_and_numbers_whatever_their_format():
    text = "zhang san showed passport e12345678; Zhang San-Li signed"
    assert redact(text, ["Zhang San", "Zhang San-Li"], ["E12345678"]) == (
        "[name withheld] showed passport *******78; [name withheld] signed")


def test_an_inspectors_note_loses_the_buyers_name_and_number_before_it_is_published():
    held = [Reason(code="SELECTED_FOR_INSPECTION", message="selected at random")]
    status, channel, reasons = inspection_outcome(
        held, False, "Zhang San (passport E12345678) refused to open the parcel; payer Li Si",
        names=["Zhang San", "Li Si"], id_numbers=["E12345678", None])
    assert (status, channel) == ("rejected", None)
    message = reasons[0].message
    assert "Zhang San" not in message and "Li Si" not in message and "E12345678" not in message
    assert "refused to open the parcel" in message and "*******78" in message


# --- log lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "leak"), [
    ("buyer 110101199003070011 refused", "110101199003070011"),
    ("buyer 11010519491231002x refused", "11010519491231002x"),
    ('{"id_type": "passport", "id_number": "E12345678"}', "E12345678"),
    ("Person(name='A', id_type='other', id_number='X98765432101')", "X98765432101"),
    ("passport E12345678 refused", "E12345678"),
    ("seen EA1234567 at the desk", "EA1234567"),                 # a PRC passport shape, unlabelled
    ("id_no=K1234567", "K1234567"),
    ("身份证号码 110101199003070011", "110101199003070011"),
])
def test_log_masking_catches_resident_ids_labelled_numbers_and_passport_shapes(line, leak):
    masked = mask_personal_data(line)
    assert leak not in masked and leak.upper() not in masked.upper()


@pytest.mark.parametrize("line", [
    "order PLAT001:ORD-20261124-000001 decided",
    "enterprise 91330100MA2B3C4D5E registered",                # a USCC is not an identity number
    "waybill SF1234567890 arrived",
    "id_number_masked 1101**********0011",
])
def test_log_masking_leaves_codes_and_masked_numbers_alone(line):
    assert mask_personal_data(line) == line


def test_the_json_formatter_masks_message_extra_fields_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("test.personal_data")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("bad passport E12345678")
        except ValueError:
            logger.exception("failed for id_number=E12345678", extra={"error": "passport E12345678"})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "E12345678" not in line
    entry = json.loads(line)
    assert entry["msg"] == "failed for id_number=*******78" and entry["error"] == "passport *******78"


def test_a_carriers_free_text_loses_the_orders_names_and_identity_numbers():
    from contracts.v1.documents import TrackingEventIn
    from services.gateway.rules import tracking_without_personal_data

    report = TrackingEventIn(event="exception", at="2026-11-24T13:00:00+08:00", location="door of Zhang San",
                             note="zhang san (passport E12345678, id 110101199003070011) not at home; ask Li Si")
    clean = tracking_without_personal_data(report, ["Zhang San", "Li Si"])
    assert clean.location == "door of [name withheld]"
    assert clean.note == ("[name withheld] (passport *******78, id 1101**********0011) not at home; "
                          "ask [name withheld]")
    assert (clean.event, clean.at) == (report.event, report.at)
    long = TrackingEventIn(event="exception", at="2026-11-24T13:00:00+08:00", location="A " * 100)
    assert len(tracking_without_personal_data(long, ["A"]).location) == 200  # still fits the field


def test_a_stored_fingerprint_is_keyed_so_it_cannot_be_reversed_into_the_identity_number():
    import hashlib

    from contracts.examples import IMPORT_ORDER_IN
    from contracts.v1.documents import OrderIn
    from services.gateway.rules import fingerprint

    order = OrderIn.model_validate(IMPORT_ORDER_IN)
    canonical = json.dumps(order.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    assert fingerprint(order, "k1") == fingerprint(OrderIn.model_validate(IMPORT_ORDER_IN), "k1")  # idempotent
    assert fingerprint(order, "k1") != fingerprint(order, "k2")
    # Without the key, trying every resident id against the stored value finds nothing.
    assert fingerprint(order, "k1") != hashlib.sha256(canonical.encode()).hexdigest()
    other = OrderIn.model_validate({**IMPORT_ORDER_IN, "buyer": {**IMPORT_ORDER_IN["buyer"],
                                                                 "id_number": "11010519491231002X"}})
    assert fingerprint(other, "k1") != fingerprint(order, "k1")  # another buyer is another document


def test_log_masking_drops_the_input_a_validation_error_echoes():
    from pydantic import BaseModel, ValidationError

    class Payer(BaseModel):
        name: str
        amount: int

    with pytest.raises(ValidationError) as raised:
        Payer.model_validate({"nam": "Zhang San", "amount": "x", "passport_holder": "E1234567X"})
    line = mask_personal_data(repr(raised.value) + str(raised.value))
    assert "Zhang San" not in line and "E1234567X" not in line
    assert "input_value=…, input_type=dict]" in line and "Field required" in line
    cut = repr(raised.value)[:repr(raised.value).index("Zhang") + 7]  # as `repr(err)[:500]` may cut it
    assert "Zhang" not in mask_personal_data(cut)


def test_a_body_s_own_identity_numbers_are_masked_in_its_free_text():
    """A careless platform writes the buyer's passport into the address and an item name: what the gateway
    publishes carries it masked (found by a newcomer's attempt); the id_number field itself stays whole for
    sealing, and a body with nothing to mask is returned as it came."""
    from contracts.v1.documents import OrderIn  # noqa: PLC0415
    from services.gateway.rules import without_own_id_numbers  # noqa: PLC0415
    from tests.support import order_body  # noqa: PLC0415

    body = order_body("91330100MA27U8AA1U", "91330100MA27U8AA1U", "ORD-PII-1")
    body["buyer"] = {**body["buyer"], "id_type": "passport", "id_number": "QZ7654321"}
    body["consignee"] = {**body["consignee"], "address": "Room 1, passport qz7654321, Road"}
    body["items"][0]["name"] = "Cream for QZ7654321"
    doc = without_own_id_numbers(OrderIn.model_validate(body))
    assert doc.consignee.address == f"Room 1, passport {mask_id_number('QZ7654321')}, Road"
    assert doc.items[0].name == f"Cream for {mask_id_number('QZ7654321')}"
    assert doc.buyer.id_number == "QZ7654321"
    plain = OrderIn.model_validate(order_body("91330100MA27U8AA1U", "91330100MA27U8AA1U", "ORD-PII-2"))
    assert without_own_id_numbers(plain) is plain


def test_a_tracking_report_loses_a_buyer_s_unlabelled_number_known_only_by_its_masked_form():
    """A carrier writes the buyer's passport into a tracking note with no label: the gateway holds only the
    masked number (the full one is sealed for customs), and masks any word whose masked form is the
    buyer's (found by a newcomer's attempt: `recipient QZ7654321 absent` was published whole)."""
    from contracts.v1.documents import TrackingEventIn  # noqa: PLC0415
    from services.gateway.rules import tracking_without_personal_data  # noqa: PLC0415

    report = TrackingEventIn(event="exception", at="2026-11-24T10:00:00+08:00", location="Hangzhou qz7654321",
                             note="recipient QZ7654321 absent; waybill SF1234567890 at desk KW9X3")
    clean = tracking_without_personal_data(report, ["Zhang San"], [mask_id_number("QZ7654321"), None])
    masked = mask_id_number("QZ7654321")
    assert clean.location == f"Hangzhou {masked}"
    assert clean.note == f"recipient {masked} absent; waybill SF1234567890 at desk KW9X3"
