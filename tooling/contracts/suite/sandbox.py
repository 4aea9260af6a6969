"""The platform mode against a running (sandbox) gateway: every document is submitted with one API key and
the gateway's answer is reported, problem details included.

One key submits every document, so it should belong to a sandbox enterprise registered with every role the
documents need (`platform`, `payment`, `logistics`); enterprise registrations need the operator's token.
Registrations go first, one by one, then orders, payments and waybills, so that each finds what it refers to.
Orders, payments and waybills go through the batch endpoints (spec §7.1, `POST /v1/orders:batch`, up to 500
per request): each document's answer is its own result, so one refused document is reported beside the
accepted ones exactly as the single endpoint would have answered it. Tracking events are not submitted:
their waybill is named in the URL, not in the document."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tooling.contracts.suite.platform import Document

ENDPOINTS = {"enterprise": "/v1/enterprises", "order": "/v1/orders", "payment": "/v1/payments",
             "waybill": "/v1/waybills"}
BATCHED = ("order", "payment", "waybill")  # kinds with a batch twin: `<endpoint>:batch`
BATCH_MAX = 500
_ORDER = ("enterprise", "order", "payment", "waybill")


@dataclass(frozen=True)
class Answer:
    location: str
    kind: str | None
    status: int | None  # None: not submitted
    title: str
    errors: tuple[dict, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def submit(documents: list[Document], gateway_url: str, api_key: str,
           client: httpx.Client | None = None) -> list[Answer]:
    """Submits the documents (registrations singly, the rest in batches) and returns one answer per document,
    registrations first, then orders, payments and waybills, each kind in the order given."""
    own = client is None
    client = client or httpx.Client(base_url=gateway_url, timeout=60)
    auth = {"Authorization": f"Bearer {api_key}"}
    try:
        answers = []
        ordered = sorted(documents, key=lambda d: _ORDER.index(d.kind) if d.kind in _ORDER else len(_ORDER))
        for kind in _ORDER:
            mine = [d for d in ordered if d.kind == kind]
            if kind not in BATCHED:
                answers += [_answer(d, client.post(ENDPOINTS[kind], json=d.body, headers=auth)) for d in mine]
                continue
            for start in range(0, len(mine), BATCH_MAX):
                chunk = mine[start:start + BATCH_MAX]
                r = client.post(ENDPOINTS[kind] + ":batch", json={"documents": [d.body for d in chunk]}, headers=auth)
                answers += _batch_answers(chunk, r)
        for doc in ordered:
            if doc.kind not in ENDPOINTS:
                answers.append(Answer(doc.location, doc.kind, None, "not submitted: a tracking event's waybill is "
                                      "in the URL, not in the document" if doc.kind == "tracking" else
                                      "not submitted: unknown kind of document"))
        return answers
    finally:
        if own:
            client.close()


def _batch_answers(chunk: list[Document], r: httpx.Response) -> list[Answer]:
    """Each document's own result; if the batch as a whole was refused (401, 413, …), that answer for each."""
    try:
        results = r.json()["results"] if r.status_code == 200 else None
    except (ValueError, KeyError, TypeError):
        results = None
    if not isinstance(results, list) or len(results) != len(chunk) or not all(
            isinstance(res, dict) and isinstance(res.get("status"), int) for res in results):
        return [_answer(d, r) for d in chunk]
    return [_from_result(d, res.get("status"), res.get("body")) for d, res in zip(chunk, results)]


def _answer(doc: Document, r: httpx.Response) -> Answer:
    body: Any
    try:
        body = r.json()
    except ValueError:
        body = {}
    return _from_result(doc, r.status_code, body, r.reason_phrase)


def _from_result(doc: Document, status: int, body: Any, reason: str | None = None) -> Answer:
    reason = reason or httpx.codes.get_reason_phrase(status)
    if 200 <= status < 300 or not isinstance(body, dict):
        return Answer(doc.location, doc.kind, status, reason)
    title = body.get("title") or reason
    if body.get("detail"):
        title += f": {body['detail']}"
    return Answer(doc.location, doc.kind, status, title, tuple(body.get("errors") or ()))


def answers_text(answers: list[Answer], gateway_url: str) -> str:
    lines = [f"Submitted to {gateway_url}:"]
    for a in answers:
        status = a.status if a.status is not None else "---"
        lines.append(f"  {status} {a.location} ({a.kind or 'unknown'}): {a.title}")
        lines += [f"        {e.get('field', '?')}: {e.get('message', '')} [{e.get('code', '')}]" for e in a.errors]
    refused = [a for a in answers if a.status is not None and not a.accepted]
    lines.append(f"{len(answers) - len(refused)} of {len(answers)} accepted or skipped, {len(refused)} refused")
    return "\n".join(lines) + "\n"


def answers_json(answers: list[Answer]) -> list[dict]:
    return [{"location": a.location, "kind": a.kind, "status": a.status, "title": a.title, "errors": list(a.errors)}
            for a in answers]
