"""The suite's reports: plain text for people, JSON for machines (`--json`)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from tooling.contracts.suite.agency import ScenarioResult, SuiteResult
from tooling.contracts.suite.platform import PlatformReport

_LABEL = {"passed": "PASS", "failed": "FAIL", "timed out": "TIMEOUT"}


# --- agency mode ---------------------------------------------------------------------------------------


def agency_text(result: SuiteResult) -> str:
    run = result.run
    lines = [
        f"Contract suite, agency role {run.role}: run {result.run_id} on {run.bootstrap}, time limit {run.timeout:g} s",
        f"  published on:      {', '.join(result.inputs)}",
        f"  answers read from: {', '.join(result.outputs)}",
        "",
    ]
    for r in result.results:
        lines += _scenario_text(r, run.timeout)
    counts = defaultdict(int)
    for r in result.results:
        counts[r.outcome] += 1
    summary = ", ".join(f"{counts[o]} {o}" for o in ("passed", "failed", "timed out") if counts[o])
    lines += hints(result)
    lines.append(f"{'PASSED' if result.passed else 'FAILED'}: {summary} (of {len(result.results)} scenarios)")
    return "\n".join(lines) + "\n"


def _scenario_text(r: ScenarioResult, timeout: float) -> list[str]:
    lines = [f"{_LABEL[r.outcome]:<8} {r.scenario.name} ({r.seconds:.1f} s)", f"         {r.scenario.title}"]
    if r.passed:
        return lines
    for step, row in enumerate(r.verdicts):
        for v in row:
            if v.ok:
                continue
            lines.append(f"         {v.expect.describe()}")
            if v.findings:
                lines += [f"           {f.field}: expected {f.expected}, got {f.got}" for f in v.findings]
            elif step >= r.steps_played:
                lines.append(f"           not played: an answer of step {r.steps_played} was wrong or late")
            elif r.outcome == "failed":
                lines.append("           nothing received before the scenario stopped at a wrong answer")
            else:
                lines.append(f"           nothing received within {timeout:g} s")
    if r.others:
        seen = ", ".join(sorted({f"{o.describe()} on {o.topic} (key {o.key})" for o in r.others}))
        lines.append(f"         also received on this scenario's keys, not expected: {seen}")
    if r.scenario.note:
        lines.append(f"         note: {r.scenario.note}")
    return lines


def hints(result: SuiteResult) -> list[str]:
    """Likely causes of a failure pattern that is not about the agency's rules."""
    out = []
    findings = [f for r in result.results for row in r.verdicts for v in row for f in v.findings]
    if result.run.role == "customs" and any(
            "IDENTITY_MISMATCH" in f.got and "IDENTITY_MISMATCH" not in f.expected for f in findings):
        out.append("hint: IDENTITY_MISMATCH where none was expected: identity numbers are sealed to "
                   "--customs-public-key (default: the dev key); pass the public half of the key the agency opens "
                   "them with")
    if result.results and all(r.outcome == "timed out" and r.steps_played and not any(
            v.received for row in r.verdicts for v in row) for r in result.results):
        out.append(f"hint: no answer at all: is the agency running, connected to {result.run.bootstrap}, and "
                   f"reading {'the topics under ' + repr(result.run.topic_prefix) if result.run.topic_prefix else 'these topics'}?")
    return out


def agency_json(result: SuiteResult) -> dict[str, Any]:
    return {
        "mode": "agency", "role": result.run.role, "run_id": result.run_id, "bootstrap": result.run.bootstrap,
        "passed": result.passed, "inputs": result.inputs, "outputs": result.outputs,
        "scenarios": [{
            "name": r.scenario.name, "title": r.scenario.title, "outcome": r.outcome, "seconds": round(r.seconds, 3),
            "note": r.scenario.note or None,
            "expected": [{
                "step": step + 1, "event": v.expect.describe(), "received": v.received is not None, "ok": v.ok,
                "findings": [{"field": f.field, "expected": f.expected, "got": f.got} for f in v.findings],
            } for step, row in enumerate(r.verdicts) for v in row],
        } for r in result.results],
    }


# --- platform mode -------------------------------------------------------------------------------------


def platform_text(report: PlatformReport) -> str:
    by_location: dict[str, list] = defaultdict(list)
    for v in report.violations:
        by_location[v.location].append(v)
    lines = []
    for location, violations in by_location.items():
        lines.append(location)
        for v in violations:
            who = "gateway refuses" if v.refused_by == "gateway" else "customs rejects"
            where = f"{v.field} ({v.element})" if v.element else v.field
            lines.append(f"  {where}: {v.message} [{v.code}; {who}]")
    if report.notes:
        lines.append("notes (not violations):")
        lines += [f"  {n.location}: {n.message} [{n.code}]" for n in report.notes]
    documents = len(report.documents)
    ceb = report.ceb
    read = (f"{documents} document(s), {len(ceb.documents)} of them from {len(ceb.messages)} CEB message(s)"
            if ceb is not None else f"{documents} document(s)")
    if report.clean:
        lines.append(f"OK: {read}, no violations")
    elif ceb is None:
        lines.append(f"FAILED: {len(report.violations)} violation(s) in {len(by_location)} of {documents} "
                     "document(s)")
    else:  # a message or a list is a location of its own, not a document
        lines.append(f"FAILED: {len(report.violations)} violation(s) at {len(by_location)} location(s); {read}")
    return "\n".join(lines) + "\n"


def platform_json(report: PlatformReport) -> dict[str, Any]:
    return {
        "mode": "platform", "clean": report.clean,
        "documents": [{"location": d.location, "kind": d.kind} for d in report.documents],
        "violations": [_violation_json(v) for v in report.violations],
        "notes": [_violation_json(v) for v in report.notes],
    }


def _violation_json(v) -> dict[str, Any]:  # noqa: ANN001
    out = {"location": v.location, "field": v.field, "code": v.code, "message": v.message, "refused_by": v.refused_by}
    if v.element:
        out["element"] = v.element
    return out
