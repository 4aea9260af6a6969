"""The gateway's read model as pure functions (services/gateway/views.py): which answers are kept, and
how the held views make the status view of spec §4.4."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from contracts.v1.events import CustomsDecision, FxSettled, LogisticsAnomaly, Reason, TaxAssessment
from services.gateway import views
from services.gateway.views import OrderView, Projection

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)
A, B = ("P", "A"), ("P", "B")


def answer(key, agency: str, version: int | None, status: str, minutes: int = 0) -> Projection:  # noqa: ANN001
    return Projection(order_view=OrderView(key, agency, version, {"status": status}, T0 + timedelta(minutes=minutes)))


def kept(projections, held) -> dict:  # noqa: ANN001
    return {(v.key, v.agency): (v.version, v.view["status"]) for v in views.kept_order_views(projections, held)}


def test_the_newest_version_wins_and_the_later_of_equal_versions():
    run = [answer(A, "customs", 2, "released"), answer(A, "customs", 1, "rejected"),
           answer(B, "customs", 1, "inspection"), answer(B, "customs", 1, "released")]
    assert kept(run, {A: 1, B: 1}) == {(A, "customs"): (2, "released"), (B, "customs"): (1, "released")}


def test_an_answer_about_an_older_version_or_an_unknown_order_is_dropped():
    run = [answer(A, "customs", 1, "released"), answer(B, "tax", 3, "assessed"), answer(("P", "GHOST"), "tax", 1, "x")]
    assert kept(run, {A: 2, B: 3}) == {(B, "tax"): (3, "assessed")}


def test_an_answer_without_a_version_is_about_the_held_one_and_the_last_wins():
    run = [answer(A, "fx", None, "settled"), answer(A, "fx", None, "not_applicable")]
    assert kept(run, {A: 4}) == {(A, "fx"): (4, "not_applicable")}


def test_each_event_type_maps_to_its_agency_view_and_trace_line():
    d = CustomsDecision(platform_code="P", order_no="A", order_version=2, ecommerce_code="E", direction="import",
                        trade_mode="9610", status="rejected", reasons=[Reason(code="DOCUMENT_TIMEOUT", message="late")],
                        decided_at=T0)
    p = views.of_customs_decision(d, "P:A")
    assert (p.order_view.key, p.order_view.agency, p.order_view.version, p.order_view.at) == (A, "customs", 2, T0)
    assert p.order_view.view == {"status": "rejected", "channel": None,
                                 "reasons": [{"code": "DOCUMENT_TIMEOUT", "message": "late"}]}
    assert (p.trace.source, p.trace.type, p.trace.summary) == ("customs", "customs.decision", "rejected: DOCUMENT_TIMEOUT")

    t = views.of_tax_assessment(TaxAssessment(platform_code="P", order_no="A", order_version=1, ecommerce_code="E",
                                              status="exempt", assessed_at=T0), "P:A")
    assert (t.order_view.view, t.trace.summary) == ({"status": "exempt"}, "exempt")

    f = views.of_fx_settlement(FxSettled(platform_code="P", order_no="A", ecommerce_code="E", status="settled",
                                         amount_usd=Decimal("72.27"), rate=Decimal("7.2649"), rate_date="2026-11-24",
                                         year=2026, year_to_date_usd=Decimal("200072.27"),
                                         directory_status="registration_required", settled_at=T0), "P:A")
    assert f.order_view.version is None and f.order_view.view["amount_usd"] == "72.27"
    assert (f.enterprise_view.code, f.enterprise_view.agency, f.enterprise_view.view) == (
        "E", "fx", {"directory_status": "registration_required", "year": 2026, "year_to_date_usd": "200072.27"})
    assert f.trace.summary == "settled USD 72.27"

    a = views.of_logistics_anomaly(LogisticsAnomaly(logistics_code="L", waybill_no="W", platform_code="P",
                                                    order_no="A", anomaly="ORDER_NEVER_CAME", detail="72 h", at=T0), "P:A")
    assert a.order_view is None and a.trace.summary == "ORDER_NEVER_CAME: 72 h"


def test_the_status_view_shows_the_fixed_agencies_pending_and_every_other_view_held():
    shown = views.agency_sections({"tax": {"status": "exempt"}, "quarantine": {"status": "sampled"},
                                   "documents": {"status": "sneaky"}}, reserved=["documents", "version"])
    assert shown == {"customs": {"status": "pending", "channel": None, "reasons": []}, "tax": {"status": "exempt"},
                     "fx": {"status": "pending"}, "logistics": {"status": "pending"}, "quarantine": {"status": "sampled"}}


def test_a_sixth_agency_is_a_mapping_and_nothing_else():
    """A new agency's answer needs only its mapping: kept, saved and shown like the five others."""
    quarantine = Projection(order_view=OrderView(A, "quarantine", 1, {"status": "sampled"}, T0))
    [view] = views.kept_order_views([quarantine], {A: 1})
    assert view.row() == {"platform_code": "P", "order_no": "A", "agency": "quarantine", "version": 1,
                          "view": {"status": "sampled"}, "updated_at": T0}
    assert views.agency_sections({"quarantine": view.view})["quarantine"] == {"status": "sampled"}


def test_corrections_and_cancellations():
    reset = views.views_on_correction(A, 3, T0)
    assert [(v.agency, v.version, v.view) for v in reset] == [
        ("customs", 3, {"status": "pending", "channel": None, "reasons": []}),
        ("tax", 3, {"status": "pending"}), ("fx", 3, {"status": "pending"})]
    rejected = {"status": "rejected", "channel": None, "reasons": [{"code": "AMOUNT_MISMATCH", "message": "m"}]}
    cancelled = views.view_on_cancellation(A, 2, T0, rejected)
    assert (cancelled.version, cancelled.view) == (2, {**rejected, "status": "cancelled"})
    assert views.view_on_cancellation(A, 2, T0, None).view == {"status": "cancelled", "channel": None, "reasons": []}
    assert views.customs_status({}) == "pending"
    assert views.customs_status({"customs": {"status": "inspection"}}) == "inspection"


def test_updated_at_is_the_latest_change():
    assert views.last_update(T0, [T0 + timedelta(seconds=5), T0 - timedelta(days=1)]) == T0 + timedelta(seconds=5)
    assert views.last_update(T0, []) == T0


def test_any_agency_status_event_is_shown_under_its_agency_with_no_mapping_of_its_own():
    from contracts.v1.quarantine import QuarantineStatus  # an AgencyOrderStatus: no of_quarantine in views.py
    from services.gateway.handlers import handlers

    held = QuarantineStatus(platform_code="P", order_no="A", order_version=2, status="held", chapters=["03"],
                            reasons=[{"code": "ANIMAL_OR_PLANT_GOODS", "message": "HS chapter 03"}], decided_at=T0)
    p = views.of_agency_status(held, "P:A")
    assert p.order_view == OrderView(A, "quarantine", 2, {
        "status": "held", "chapters": ["03"], "reasons": [{"code": "ANIMAL_OR_PLANT_GOODS", "message": "HS chapter 03"}],
        "at": T0.isoformat()}, T0)
    assert (p.trace.source, p.trace.type, p.trace.summary) == ("quarantine", "quarantine.status",
                                                               "held: ANIMAL_OR_PLANT_GOODS")
    assert ("quarantine.status", 1) in handlers.by_type  # the gateway subscribes by itself
    assert views.agency_sections({"quarantine": p.order_view.view})["quarantine"]["status"] == "held"
