"""The platform mode against a running (sandbox) gateway: every document is submitted with one API key and
the gateway's answer is reported, problem details included.

One key submits every document, so it should belong to a sandbox enterprise registered with every role the
documents need (`platform`, `payment`, `logistics`); enterprise registrations need the operator's token.
Registrations go first, then orders, payments and waybills, so that each finds what it refers to. Tracking
events are not submitted: their waybill is named in the URL, not in the document."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from contracts.suite.platform import Document

ENDPOINTS = {"enterprise": "/v1/enterprises", "order": "/v1/orders", "payment": "/v1/payments",
             "waybill": "/v1/waybills"}
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
    own = client is None
    client = client or httpx.Client(base_url=gateway_url, timeout=30)
    try:
        answers = []
        for doc in sorted(documents, key=lambda d: _ORDER.index(d.kind) if d.kind in _ORDER else len(_ORDER)):
            if doc.kind not in ENDPOINTS:
                answers.append(Answer(doc.location, doc.kind, None, "not submitted: a tracking event's waybill is "
                                      "in the URL, not in the document" if doc.kind == "tracking" else
                                      "not submitted: unknown kind of document"))
                continue
            r = client.post(ENDPOINTS[doc.kind], json=doc.body, headers={"Authorization": f"Bearer {api_key}"})
            answers.append(_answer(doc, r))
        return answers
    finally:
        if own:
            client.close()


def _answer(doc: Document, r: httpx.Response) -> Answer:
    body: Any
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.is_success or not isinstance(body, dict):
        return Answer(doc.location, doc.kind, r.status_code, r.reason_phrase)
    title = body.get("title") or r.reason_phrase
    if body.get("detail"):
        title += f": {body['detail']}"
    return Answer(doc.location, doc.kind, r.status_code, title, tuple(body.get("errors") or ()))


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
