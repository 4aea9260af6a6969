"""The platform mode against a running (sandbox) gateway: every document is submitted with one API key and
the gateway's answer is reported, problem details included.

One key submits every document, so it should belong to a sandbox enterprise registered with every role the
documents need (`platform`, `payment`, `logistics`); enterprise registrations need the operator's token.
Registrations go first, one by one, then orders, payments and waybills, so that each finds what it refers to.
Orders, payments and waybills go through the batch endpoints (spec §7.1, `POST /v1/orders:batch`, up to 500
per request): each document's answer is its own result, so one refused document is reported beside the
accepted ones exactly as the single endpoint would have answered it. Tracking events are not submitted:
their waybill is named in the URL, not in the document.

CEB messages (`submit_ceb`) are posted as they are to `POST /ceb/v1/messages`, each with the API key of its
`BaseTransfer/copCode`; every `…Return` of the receipt is reported, and optionally the caller's receipt feed
(`GET /ceb/v1/receipts`) is read until every held record (Return 2) has had its later receipt."""
from __future__ import annotations

from dataclasses import dataclass, field
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


# --- CEB messages (spec §7.5): posted as they are, their receipts reported ------------------------------------

CEB_MESSAGES, CEB_RECEIPTS = "/ceb/v1/messages", "/ceb/v1/receipts"
# The elements that name a record in a …Return, to tell which held record a later receipt is about.
_RETURN_KEYS = ("orderNo", "logisticsNo", "payTransactionId", "copNo", "invtNo")


@dataclass(frozen=True)
class CebReturn:
    """One `…Return` of a receipt: the record it answers (its location, when the receipt answers a message
    of the set), customs' `returnStatus` (120 accepted, 2 held, negative: refused; in the feed also 300, 500,
    800, 100) and `returnInfo`."""

    location: str | None
    receipt_type: str
    status: str
    info: str
    keys: tuple[tuple[str, str], ...] = ()

    @property
    def refused(self) -> bool:
        return self.status.startswith("-")


@dataclass(frozen=True)
class CebAnswer:
    """The gateway's answer to one message file: the HTTP status, and the receipt's Returns (200), the
    CEB900's info (422) or the problem's title (400, 403, …)."""

    location: str
    status: int | None
    title: str
    returns: tuple[CebReturn, ...] = ()

    @property
    def refused(self) -> bool:
        return self.status != 200 or any(r.refused for r in self.returns)


@dataclass
class CebRun:
    """Everything the gateway answered: per message, and what its receipt feed said later (`later`), and
    the held records no later receipt was seen for (`still_held`), when polling was asked for."""

    answers: list[CebAnswer]
    later: list[CebReturn] = field(default_factory=list)
    still_held: list[CebReturn] = field(default_factory=list)
    polled: float = 0.0

    @property
    def refused(self) -> bool:
        return (any(a.refused for a in self.answers) or any(r.refused for r in self.later)
                or (self.polled > 0 and bool(self.still_held)))


def _returns(xml: bytes, locations: list[str]) -> tuple[str, list[CebReturn]]:
    from services.gateway.ceb.receipts import parse_receipt

    receipt_type, returns = parse_receipt(xml)
    out = []
    for n, r in enumerate(returns):
        keys = tuple((k, r[k]) for k in _RETURN_KEYS if r.get(k))
        out.append(CebReturn(locations[n] if n < len(locations) else None, receipt_type, r.get("returnStatus", ""),
                             r.get("returnInfo", ""), keys))
    return receipt_type, out


def _cursor(client: httpx.Client, key: str) -> int:
    """The end of the caller's receipt feed now (what came before this run is not the run's news)."""
    since = 0
    while True:
        r = client.get(CEB_RECEIPTS, params={"since": since}, headers={"Authorization": f"Bearer {key}"})
        if r.status_code != 200:
            return since
        page = r.json()
        if not page.get("receipts"):
            return since
        since = page["next"]


def _same_record(held: CebReturn, later: CebReturn) -> bool:
    """A later receipt is about a held record: the same receipt type, and the naming elements both carry agree."""
    a, b = dict(held.keys), dict(later.keys)
    shared = set(a) & set(b)
    return held.receipt_type == later.receipt_type and bool(shared) and all(a[k] == b[k] for k in shared)


def submit_ceb(messages: list, gateway_url: str, api_key: str, keys: dict[str, str] | None = None,
               poll_seconds: float = 0.0, client: httpx.Client | None = None,
               sleep: Any = None) -> CebRun:
    """Posts each message file (`ceb.CebMessageFile`, in the order given) to `POST /ceb/v1/messages` with the
    API key of its `BaseTransfer/copCode` (`keys`: code → key; else `api_key`) and reads every `…Return` of
    the receipt. With `poll_seconds`, then reads `GET /ceb/v1/receipts` of each key used (from where the feed
    stood before the run) until every held record (Return 2) has had a later receipt, or the time is up."""
    import time

    own = client is None
    client = client or httpx.Client(base_url=gateway_url, timeout=60)
    keys = keys or {}
    sleep = sleep or time.sleep
    try:
        used = {keys.get(m.cop_code or "", api_key) for m in messages}
        cursors = {k: _cursor(client, k) for k in used} if poll_seconds > 0 else {}
        answers = []
        for m in messages:
            key = keys.get(m.cop_code or "", api_key)
            r = client.post(CEB_MESSAGES, content=m.data, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/xml"})
            answers.append(_ceb_answer(m, r))
        run = CebRun(answers, polled=poll_seconds)
        held = [ret for a in answers for ret in a.returns if ret.status == "2"]
        if poll_seconds <= 0:
            run.still_held = held
            return run
        deadline = time.monotonic() + poll_seconds
        while True:
            for k in cursors:
                r = client.get(CEB_RECEIPTS, params={"since": cursors[k]}, headers={"Authorization": f"Bearer {k}"})
                if r.status_code != 200:
                    continue
                page = r.json()
                for item in page.get("receipts", []):
                    _, returns = _returns(item["xml"].encode(), [])
                    for ret in returns:
                        match = next((h for h in held if _same_record(h, ret)), None)
                        run.later.append(CebReturn(match.location if match else None, ret.receipt_type, ret.status,
                                                   ret.info, ret.keys))
                        if match is not None and ret.status != "2":
                            held.remove(match)
                cursors[k] = page.get("next", cursors[k])
            if not held or time.monotonic() >= deadline:
                break
            sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        run.still_held = held
        return run
    finally:
        if own:
            client.close()


def _ceb_answer(m: Any, r: httpx.Response) -> CebAnswer:
    if r.status_code in (200, 422) and r.headers.get("content-type", "").startswith("application/xml"):
        receipt_type, returns = _returns(r.content, m.locations if r.status_code == 200 else [])
        if r.status_code == 200:
            return CebAnswer(m.path, 200, receipt_type, tuple(returns))
        info = "; ".join(f"{x.status} {x.info}" for x in returns) or receipt_type
        return CebAnswer(m.path, 422, f"{receipt_type}: {info}")
    try:
        body = r.json()
        title = body.get("title") or r.reason_phrase
        if body.get("detail"):
            title += f": {body['detail']}"
    except ValueError:
        title = r.reason_phrase
    return CebAnswer(m.path, r.status_code, title)


def ceb_text(run: CebRun, gateway_url: str) -> str:
    lines = [f"CEB messages posted to {gateway_url}{CEB_MESSAGES}:"]
    for a in run.answers:
        lines.append(f"  {a.status} {a.location}: {a.title}")
        lines += [f"        {r.location or '?'}: {r.status} {r.info}" for r in a.returns]
    if run.polled > 0:
        lines.append(f"Later receipts ({CEB_RECEIPTS}, {run.polled:g} s):")
        lines += [f"  {r.receipt_type} {r.location or dict(r.keys)}: {r.status} {r.info}" for r in run.later]
        lines += [f"  {r.location}: still held, no later receipt within {run.polled:g} s ({r.info})"
                  for r in run.still_held]
    elif run.still_held:
        lines.append(f"{len(run.still_held)} record(s) held (2): --poll SECONDS reads their later receipts")
    refused = sum(a.refused for a in run.answers)
    lines.append(f"{len(run.answers) - refused} of {len(run.answers)} message(s) taken without a refusal, "
                 f"{refused} with one")
    return "\n".join(lines) + "\n"


def ceb_json(run: CebRun) -> dict:
    ret = lambda r: {"location": r.location, "receipt_type": r.receipt_type, "status": r.status,  # noqa: E731
                     "info": r.info, "keys": dict(r.keys)}
    return {"answers": [{"location": a.location, "status": a.status, "title": a.title,
                         "returns": [ret(r) for r in a.returns]} for a in run.answers],
            "later": [ret(r) for r in run.later], "still_held": [ret(r) for r in run.still_held],
            "polled_seconds": run.polled}
