"""The fault suite's output: the JSON results and one table, the same on the terminal and in Markdown
(chaos/results/latest.md, which docs/reliability.md includes)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

COLUMNS = ("fault", "documents", "lost", "duplicated", "wrong", "refused", "time to recover", "result")


def seconds(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} s"


def cells(row: dict) -> list[str]:
    return [row["fault"], f"{row['documents']:,}", str(row["lost"]), str(row["duplicated"]), str(row["wrong"]),
            str(row["refused"]), seconds(row["recover_seconds"]), "pass" if row["passed"] else "FAIL"]


def table(result: dict) -> str:
    """The table as Markdown (readable as is on a terminal)."""
    rows = [list(COLUMNS), ["---"] + ["---:"] * (len(COLUMNS) - 2) + [":---:"]] + \
        [cells(r) for r in result.get("faults", [])]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    failed = [r for r in result.get("faults", []) if not r["passed"]]
    lines.append("")
    lines.append(f"{len(result.get('faults', [])) - len(failed)} of {len(result.get('faults', []))} fault runs passed"
                 + (": " + ", ".join(r["fault"] for r in failed) + " failed" if failed else "."))
    return "\n".join(lines)


def markdown(result: dict) -> str:
    c = result["config"]
    m = result["machine"]
    head = (f"Fault suite run of {result['started_at']} on {m.get('cpus')} CPUs ({m.get('cpu_model', '?')}): "
            f"{c['declarations']} declarations per fault run ({c['mode']} mode, {c['rate']:g}/s offered), "
            f"durable PostgreSQL, seed {c['seed']}.\n\n")
    notes = []
    for r in result.get("faults", []):
        for n in r.get("notes", []):
            notes.append(f"- {r['fault']}: {n}")
        for chk in r.get("checks", []):
            if chk["lost"] or chk["duplicated"] or chk["wrong"]:
                notes.append(f"- {r['fault']}: **{chk['name']}**: lost {chk['lost']}, duplicated {chk['duplicated']}, "
                             f"wrong {chk['wrong']} (of {chk['expected']})")
    return head + table(result) + ("\n\nWhat happened:\n\n" + "\n".join(notes) if notes else "") + "\n"


def write(result: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2, default=str)
    path = out / f"{stamp}.json"
    path.write_text(text)
    (out / "latest.json").write_text(text)
    (out / "latest.md").write_text(markdown(result))
    return path
