"""`make bench`'s machinery at a tiny size: its own broker and SQLite mesh, the load generator process,
an open-loop point, the CEB case beside the REST batch path, both ceilings, the JSON result. Behaviour only,
never timings."""
from __future__ import annotations

import json

import pytest
from rich.console import Console

from bench import report
from bench.__main__ import Bench, Config

pytestmark = pytest.mark.e2e


def test_bench_runs_small_and_every_declaration_is_decided(tmp_path):
    config = Config(databases=["sqlite"], sizes=[20], rates=[4.0], open_seconds=2, stall=60, out=tmp_path,
                    progress=False, ceb_databases=["sqlite"])
    result = Bench(config, Console(quiet=True)).run()
    report.write(result, tmp_path)
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert saved["databases"]["sqlite"]["headline"] == "sqlite closed single n=20"

    runs = {r["name"]: r for r in saved["databases"]["sqlite"]["runs"]}
    head = runs["sqlite closed single n=20"]
    for key in ("accepted_docs_per_s", "decided_per_s", "gateway_latency_ms", "end_to_end_latency_s",
                "start_to_decided_s", "cpu_ms_per_declaration", "events_produced"):
        assert key in head, key
    assert head["declarations_decided"] == 20 and head["declarations_undecided"] == 0
    assert head["documents_accepted"] == head["documents_sent"]
    assert {"p50", "p95", "p99"} <= head["end_to_end_latency_s"].keys()
    assert {"gateway", "customs", "tax", "fx", "logistics", "credit", "broker", "mesh_total"} <= \
        head["cpu_ms_per_declaration"].keys()
    assert set(saved["databases"]["sqlite"]["peak_rss_mb"]) >= {"gateway", "broker"}

    open_single = runs["sqlite open single 4/s"]
    assert open_single["declarations_decided"] == open_single["declarations"]
    batch = runs["sqlite closed batch"]  # either the §7.1 endpoints answered, or the mode says it is missing
    assert batch["available"] is False or batch["declarations_decided"] == batch["declarations"]

    # The CEB case (spec §7.5): the same imports as 100-record messages, every order and waybill held then
    # completed by its list, beside the REST batch path; the ratios are printed.
    rest, ceb = runs["sqlite closed batch imports"], runs["sqlite closed ceb"]
    assert rest["imports_only"] and ceb["imports_only"]
    assert ceb["declarations_decided"] == ceb["declarations"] == rest["declarations_decided"] == 20
    assert ceb["ceb_records"] == {"list 120": 20, "order 2": 20, "payment 120": 20, "waybill 2": 20}
    assert ceb["documents_accepted"] == 60 and ceb["requests"] == 4
    summary = saved["databases"]["sqlite"]["ceb"]
    assert summary["decided_per_s"]["ratio"] > 0 and summary["accepted_declarations_per_s"]["ratio"] > 0
    assert summary["cpu_ms_per_declaration_gateway"]["ceb"] > 0
    assert any(line.startswith("CEB front door") for line in report.summary(saved["databases"]["sqlite"]))

    assert saved["ceilings"]["bare_fastapi"]["documents_accepted"] == head["documents_sent"]
    assert saved["ceilings"]["kafka_pipe"]["messages"] == int(head["events_produced"])
    assert saved["databases"]["sqlite"]["growth"][0]["declarations"] == 20
    assert "accepted_docs_vs_bare_fastapi" in saved["databases"]["sqlite"]["ratios"]
