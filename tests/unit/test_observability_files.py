"""The Grafana dashboard in deploy/grafana queries only metrics our services export, under the names they
export them, and shows what an operator looks for first (docs/observability.md)."""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from deploy.mesh import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/single-window.json"
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",),
                   "summary": ("_count", "_sum", ""), "info": ("_info",)}


def exported_metric_names() -> set[str]:
    """Every sample name the services' /metrics can show: the registry once every service is imported."""
    for name in SERVICE_PORTS:
        importlib.import_module(f"services.{name}.app")
    return {family.name + suffix for family in REGISTRY.collect() for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))}


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def expressions() -> list[str]:
    return [t["expr"] for p in panels(json.loads(DASHBOARD.read_text())) for t in p.get("targets", [])]


def test_every_metric_the_dashboard_queries_is_one_the_services_export():
    exported = exported_metric_names()
    queried = {name for expr in expressions() for name in re.findall(r"\b(sw_[a-z0-9_]+)\b", expr)}
    assert queried, "no expression found"
    assert queried <= exported, sorted(queried - exported)
    # the names the operator console reads too
    assert {"sw_consumer_lag_records", "sw_outbox_lag", "sw_events_dead_lettered_total",
            "sw_http_responses_total", "sw_event_age_seconds_bucket"} <= queried


def test_the_metrics_are_exported_with_the_labels_the_dashboard_groups_by():
    from shared import metrics

    assert "sw_consumer_lag_records" in exported_metric_names()

    assert metrics.CONSUMER_LAG._labelnames == ("group", "topic", "partition")
    assert metrics.HTTP_RESPONSES._labelnames == ("service", "method", "status")
    for expr in expressions():
        for grouped in re.findall(r"by \(([^)]*)\)", expr):
            for label in (g.strip() for g in grouped.split(",")):
                assert label in {"le", "service", "type", "topic", "group", "status"}, (label, expr)


def test_the_dashboard_shows_what_the_issue_asks_for():
    titles = " | ".join(p["title"].lower() for p in panels(json.loads(DASHBOARD.read_text())))
    for wanted in ("events handled", "time from an event", "outbox lag", "consumer lag", "dead letters", "http responses"):
        assert wanted in titles, wanted
    ids = [p["id"] for p in panels(json.loads(DASHBOARD.read_text()))]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    grafana = compose["grafana"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].endswith("/" + DASHBOARD.name)
    providers = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/single-window.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose
    uids = {t["datasource"]["uid"] for p in panels(json.loads(DASHBOARD.read_text())) for t in p.get("targets", [])}
    assert uids == {source["uid"]}
