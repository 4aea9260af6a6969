"""The bench's output: the JSON files, the terminal table and the plot."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path


def ratios(result: dict) -> None:
    """The mesh's headline figures as fractions of the ceilings measured in the same run."""
    bare = result.get("ceilings", {}).get("bare_fastapi") or {}
    pipe = result.get("ceilings", {}).get("kafka_pipe") or {}
    for db in result["databases"].values():
        head = next((r for r in db["runs"] if r["name"] == db.get("headline")), None)
        if not head:
            continue
        r = {}
        if bare.get("accepted_docs_per_s") and head.get("accepted_docs_per_s"):
            r["accepted_docs_vs_bare_fastapi"] = round(head["accepted_docs_per_s"] / bare["accepted_docs_per_s"], 4)
        if bare.get("gateway_latency_ms", {}).get("p50") and head.get("gateway_latency_ms", {}).get("p50"):
            r["gateway_p50_latency_vs_bare_fastapi"] = round(
                head["gateway_latency_ms"]["p50"] / bare["gateway_latency_ms"]["p50"], 2)
        if pipe.get("messages_per_s") and head.get("events_per_s"):
            r["events_per_s_vs_kafka_pipe"] = round(head["events_per_s"] / pipe["messages_per_s"], 4)
        db["ratios"] = r
        ceb_ratios(db)


def _run_of(db: dict, kind: str) -> dict:
    return next((r for r in db["runs"] if r.get("kind") == kind and r.get("available", True)), {})


def ceb_ratios(db: dict) -> None:
    """The CEB front door beside the REST batch path, same imports, same run (`db["ceb"]`): declarations/s
    accepted and decided, as a ratio CEB ÷ REST, and CPU ms per declaration of the gateway and the mesh."""
    ceb, rest = _run_of(db, "ceb"), _run_of(db, "ceb-reference")
    if not ceb or not rest:
        return
    out: dict = {"declarations": ceb.get("declarations"), "records_per_message": 100}
    for key in ("accepted_declarations_per_s", "decided_per_s"):
        out[key] = {"ceb": ceb.get(key), "rest_batch": rest.get(key),
                    "ratio": round(ceb[key] / rest[key], 3) if ceb.get(key) and rest.get(key) else None}
    for part in ("gateway", "mesh_total"):
        c, b = (ceb.get("cpu_ms_per_declaration") or {}).get(part), (rest.get("cpu_ms_per_declaration") or {}).get(part)
        out[f"cpu_ms_per_declaration_{part}"] = {"ceb": c, "rest_batch": b, "ratio": round(c / b, 3) if c and b else None}
    out["gateway_latency_ms_p50"] = {"ceb": (ceb.get("gateway_latency_ms") or {}).get("p50"),
                                     "rest_batch": (rest.get("gateway_latency_ms") or {}).get("p50")}
    db["ceb"] = out


def write(result: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2)
    path = out / f"{stamp}.json"
    path.write_text(text)
    (out / "latest.json").write_text(text)
    return path


def _fmt(x, digits: int = 1) -> str:  # noqa: ANN001
    if x is None:
        return "–"
    return f"{x:,.{digits}f}" if isinstance(x, float) else str(x)


COLUMNS = ("run", "declarations", "offered/s", "documents/s accepted", "declarations/s decided", "decided",
           "gateway ms p50 / p95 / p99", "end to end s p50 / p95 / p99", "mesh CPU ms/declaration")


def headline(db: dict) -> dict:
    return next((r for r in db["runs"] if r["name"] == db.get("headline")), {})


def run_cells(name: str, r: dict) -> list[str]:
    """One run as the cells of COLUMNS (the terminal table and the Markdown table show the same)."""
    label = r["name"].removeprefix(name + " ")
    if not r.get("available", True):
        return [label, "", "", "not available", "", "", "", "", ""]
    g, e = r.get("gateway_latency_ms", {}), r.get("end_to_end_latency_s", {})
    return [label, str(r["declarations"]), _fmt(r.get("offered_rate")), _fmt(r.get("accepted_docs_per_s")),
            _fmt(r.get("decided_per_s")), f"{r.get('declarations_decided')}/{r['declarations']}",
            f"{_fmt(g.get('p50'), 0)} / {_fmt(g.get('p95'), 0)} / {_fmt(g.get('p99'), 0)}",
            f"{_fmt(e.get('p50'), 2)} / {_fmt(e.get('p95'), 2)} / {_fmt(e.get('p99'), 2)}",
            _fmt((r.get("cpu_ms_per_declaration") or {}).get("mesh_total"))]


def summary(db: dict) -> list[str]:
    """What a database's run says beside its table: CPU split, idle cost, peak RSS, growth, ratios."""
    head = headline(db)
    per = head.get("cpu_ms_per_declaration") or {}
    return [
        f"CPU ms per declaration in the headline run ({head.get('name', '')}): "
        + ", ".join(f"{k} {v:.1f}" for k, v in per.items()) + ".",
        "Idle CPU ms/s: " + ", ".join(f"{k} {v}" for k, v in (db.get("idle_cpu_ms_per_s") or {}).items()) + ".",
        "Peak RSS MiB: " + ", ".join(f"{k} {v}" for k, v in (db.get("peak_rss_mb") or {}).items()) + ".",
        "Growth (declarations: mesh CPU ms/declaration, decided/s): " + "; ".join(
            f"{g['declarations']}: {_fmt(g['cpu_ms_per_declaration'])}, {_fmt(g['decided_per_s'])}"
            for g in db.get("growth", [])) + ".",
        "Against the ceilings: " + ", ".join(f"{k} {v}" for k, v in (db.get("ratios") or {}).items()) + ".",
        *ceb_lines(db),
    ]


def ceb_lines(db: dict) -> list[str]:
    """The CEB case beside the REST batch path (`ceb_ratios`), one line."""
    c = db.get("ceb")
    if not c:
        return []

    def pair(key: str, digits: int = 1) -> str:
        v = c[key]
        return f"{_fmt(v['ceb'], digits)} vs {_fmt(v['rest_batch'], digits)} (ratio {_fmt(v['ratio'], 2)})"

    return [f"CEB front door, {c['declarations']} imports in 100-record messages (CEB311, 411, 511, then 621) vs "
            f"the same imports by REST :batch of 100: declarations/s accepted {pair('accepted_declarations_per_s')}, "
            f"decided {pair('decided_per_s')}; CPU ms/declaration gateway {pair('cpu_ms_per_declaration_gateway')}, "
            f"mesh {pair('cpu_ms_per_declaration_mesh_total')}; request p50 ms "
            f"{_fmt(c['gateway_latency_ms_p50']['ceb'], 0)} vs {_fmt(c['gateway_latency_ms_p50']['rest_batch'], 0)} "
            f"(a CEB request is one message of 100 records, a REST one 100 documents)."]


def ceiling_lines(result: dict) -> list[str]:
    c, lines = result.get("ceilings", {}), []
    if c.get("bare_fastapi"):
        b = c["bare_fastapi"]
        lines.append(f"Ceiling (b), bare FastAPI endpoint: {_fmt(b.get('accepted_docs_per_s'))} documents/s, request "
                     f"latency p50 {_fmt(b['gateway_latency_ms']['p50'], 0)} ms, p95 {_fmt(b['gateway_latency_ms']['p95'], 0)} ms.")
    if c.get("kafka_pipe"):
        k = c["kafka_pipe"]
        lines.append(f"Ceiling (a), raw Kafka pipe: {k['messages']} messages of {k['message_bytes']} bytes, fan-out "
                     f"{k['fanout']}: {_fmt(k['messages_per_s'])} messages/s.")
    return lines


def table(result: dict, console) -> None:  # noqa: ANN001
    from rich.table import Table  # noqa: PLC0415

    for name, db in result["databases"].items():
        t = Table(title=f"{name}" + (f" (fsync={db['postgres_settings']['fsync']}, synchronous_commit="
                                     f"{db['postgres_settings']['synchronous_commit']})" if "postgres_settings" in db else ""))
        for col in COLUMNS:
            t.add_column(col, justify="left" if col == "run" else "right")
        for r in db["runs"]:
            t.add_row(*run_cells(name, r))
        console.print(t)
        for line in summary(db):
            console.print("  " + line)
    for line in ceiling_lines(result):
        console.print(line)


def plot(result: dict, path: Path) -> Path | None:
    """Throughput and latency against offered load (the open-loop runs; the closed loop as its maximum)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    drew = False
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])
    for db_name, db in result["databases"].items():
        for mode in ("single", "batch"):
            runs = sorted((r for r in db["runs"] if r.get("kind") == "open" and r.get("mode") == mode
                           and r.get("available", True) and r.get("offered_rate")), key=lambda r: r["offered_rate"])
            if not runs:
                continue
            drew = True
            colour = next(colours)
            x = [r["offered_rate"] for r in runs]
            label = f"{db_name} {mode}"
            left.plot(x, [r.get("accepted_declarations_per_s") for r in runs], "o--", color=colour, mfc="none",
                      label=f"{label}: accepted")
            left.plot(x, [r.get("decided_per_s") for r in runs], "s-", color=colour, label=f"{label}: decided")
            for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
                right.plot(x, [(r.get("end_to_end_latency_s") or {}).get(q) for r in runs], style, color=colour,
                           label=f"{label}: end to end {q}")
            right.plot(x, [(r.get("gateway_latency_ms") or {}).get("p95", 0) / 1000 for r in runs], "x-.",
                       color=colour, alpha=0.6, label=f"{label}: gateway request p95")
    if not drew:
        plt.close(fig)
        return None
    top = max(left.get_xlim()[1], left.get_ylim()[1])
    left.plot([0, top], [0, top], color="grey", lw=0.8, label="offered = served")
    left.set(xlabel="offered declarations/s", ylabel="declarations/s", title="Throughput against offered load")
    right.set(xlabel="offered declarations/s", ylabel="seconds", yscale="log", title="Latency against offered load")
    left.legend(fontsize=7)
    right.legend(fontsize=6)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"make bench, {result['machine'].get('cpus')} cores, {result.get('started_at')}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(result: dict) -> str:
    """The figures as Markdown, for docs/benchmarks.md: `python -m bench.report [RESULT.json]`."""
    m = result["machine"]
    lines = [f"Run of {result['started_at']} on {m.get('cpus')} cores ({m.get('cpu_model', '?')}), "
             f"{m.get('memory_gib', '?')} GiB, load average {m.get('load_average')} at the start; "
             f"sizes {result['config']['sizes']}, {result['config']['concurrency']} clients.", ""]
    for name, db in result["databases"].items():
        pg = db.get("postgres_settings")
        lines += [f"**{name}**" + (f" (PostgreSQL {pg['server_version'].split()[0]}, fsync={pg['fsync']}, "
                                   f"synchronous_commit={pg['synchronous_commit']}, full_page_writes={pg['full_page_writes']})"
                                   if pg else " (one file per service)"), "",
                  "| " + " | ".join(COLUMNS) + " |", "| --- |" + " ---: |" * (len(COLUMNS) - 1)]
        lines += ["| " + " | ".join(run_cells(name, r)) + " |" for r in db["runs"]]
        lines += ["", *summary(db), ""]
    lines += ceiling_lines(result)
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json"
    print(markdown(json.loads(source.read_text())))
