"""Customs' own messages as a second front door (spec §7.5):

- `POST /ceb/v1/messages`: one CEB message (UTF-8 XML, at most 8 MiB) of 1-100 records; the answer is the
  receipt message (CEB312, 412, 512, 622, 304, 506, 604), one `…Return` per record in order. 400: not
  well-formed XML (or a DTD); 422 with a CEB900 receipt: a message of another type, 0 or > 100 records, no
  `BaseTransfer/copCode`, or (with `SW_CEB_VERIFY_SIGNATURES`) a signature missing or not verified; 403:
  `copCode` is not the caller.
- `GET /ceb/v1/receipts?since=<cursor>`: the caller's receipts after `since` (0: from the start), oldest
  first: held records completed, refused or timed out, and customs' decisions on its lists.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from services.gateway import store as gateway_store
from services.gateway.auth import Caller, CallerDep, rate_limit
from services.gateway.intake import in_retried_unit_of_work
from services.gateway.ceb import receipts
from services.gateway.ceb.messages import CebError, CebMessage, MalformedMessage, RecordCountError, parse_message
from services.gateway.ceb.settings import ceb_settings
from services.gateway.ceb.signatures import load_certificates, verify
from services.gateway.ceb.store import add_receipts, receipts_since, records_box
from services.gateway.ceb.submission import Taking, screen, take
from shared.clock import utcnow
from shared.http import Problem, unavailable, unprocessable
from shared.runtime import Service, UnitOfWork

XML = "application/xml"
MAX_CURSOR = 2 ** 63 - 1  # ceb_receipts.seq is a BIGINT: a larger cursor is 422, not a database error


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=XML)


def _message_codes(message: CebMessage) -> set[str]:
    """Every enterprise code the message names (its sender and the records' parties)."""
    codes = {message.base_transfer.copCode} if message.base_transfer else set()
    for r in message.records:
        codes |= {v for k, v in r.keys.items() if k.endswith("Code") and k != "customsCode"}
    return codes


# The body, for the published description: customs' XML, which no JSON Schema describes. `x-ceb-message`
# tells schemathesis.toml that a body valid against this schema (any text) may still be refused: 400 (not
# well-formed), 413, 415, or 422 with a CEB900 receipt.
CEB_MESSAGE_BODY = {
    "requestBody": {"required": True, "description": "one CEB message (spec §7.5), UTF-8 XML, at most 8 MiB",
                    "content": {XML: {"schema": {"type": "string"}}, "text/xml": {"schema": {"type": "string"}}}},
    "x-ceb-message": True,
}


def ceb_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/ceb/v1", tags=["ceb"])
    config = ceb_settings()
    # Read once, when the gateway starts: a wrong directory stops it there rather than refusing every sender.
    trusted = load_certificates(config.certificates) if config.verify_signatures else {}

    @router.post("/messages", response_class=Response, responses={
        200: {"description": "the receipt message: one …Return per record, in order", "content": {XML: {"schema": {"type": "string"}}}},
        400: {"description": "not well-formed XML, or a DTD/entity declaration"},
        403: {"description": "BaseTransfer/copCode is not the caller"},
        415: {"description": "a Content-Type other than application/xml or text/xml"},
        422: {"description": "a CEB900 receipt: a message type not accepted, 0 or more than 100 records, or no "
                             "BaseTransfer/copCode", "content": {XML: {"schema": {"type": "string"}}}}},
        openapi_extra=CEB_MESSAGE_BODY)
    async def take_message(request: Request, caller: CallerDep) -> Response:
        if caller.is_operator:
            raise Problem(403, "Forbidden", "a CEB message is sent by an enterprise, with its own API key")
        _require_xml(request.headers.get("content-type"))
        body = await request.body()
        at = utcnow()
        try:
            message = parse_message(body)
        except MalformedMessage as err:
            raise Problem(400, "Bad request", str(err)) from None
        except (RecordCountError, CebError) as err:
            return _xml(receipts.format_error_receipt(getattr(err, "message_type", "unknown"), str(err), at, body), 422)
        if message.base_transfer is None or not message.base_transfer.copCode:
            return _xml(receipts.format_error_receipt(message.message_type, "BaseTransfer/copCode is required: it "
                                                      "names the sending enterprise", at, body), 422)
        if config.verify_signatures:
            verdict = verify(body, trusted)
            if not verdict.ok:
                return _xml(receipts.format_error_receipt(message.message_type, f"signature refused ({verdict.reason}): "
                                                          f"{verdict.detail}", at, body), 422)
        async with service.readers() as session:
            lookup = await gateway_store.enterprise_codes(session, _message_codes(message))
        cop = message.base_transfer.copCode
        if lookup.get(cop, cop) != caller.code:
            raise Problem(403, "Forbidden", f"BaseTransfer/copCode {cop!r} is not your enterprise ({caller.code})")
        # spec §7.2: documents count one by one; the request itself was counted as the first.
        await rate_limit.hit(caller, len(message.records) - 1)
        # Screened outside the transaction (parsing and validation are CPU: no transaction waits on them).
        screened = [screen(message, caller, dict(lookup))]

        async def work(uow: UnitOfWork) -> list:
            # A retried attempt starts afresh from what is committed: `take` fills in the arrivals it is given.
            arrivals = screened.pop() if screened else screen(message, caller, dict(lookup))
            taking = Taking(records_box(service.settings.sw_gateway_fingerprint_key), caller.code, at,
                            at + _timeout(), dict(lookup), {caller.code: caller})
            outcomes = await take(uow, message, arrivals, taking)
            await add_receipts(uow.session, taking.feed)
            return outcomes

        try:
            outcomes = await in_retried_unit_of_work(service.unit_of_work, work)
        except (SQLAlchemyError, OSError):
            raise unavailable() from None
        return _xml(receipts.message_receipt(message, outcomes, at))

    @router.get("/receipts", responses={200: {"description": "the caller's receipts after `since`, oldest first"}})
    async def poll_receipts(request: Request, caller: CallerDep,
                            since: Annotated[int, Query(ge=0, le=MAX_CURSOR, description="the `next` of the last answer; 0: from the start")] = 0):
        _enterprise(caller)
        unknown = sorted(set(request.query_params) - {"since"})
        if unknown:  # a misspelt cursor would otherwise read the feed from the start, silently
            raise unprocessable([{"field": name, "code": "unknown_parameter",
                                  "message": "the only query parameter is `since`"} for name in unknown])
        async with service.readers() as session:
            rows = await receipts_since(session, caller.code, since, config.receipts_page)
        return {"receipts": [{"guid": r.guid, "message_type": r.message_type, "xml": r.xml} for r in rows],
                "next": rows[-1].seq if rows else since}

    return router


def _require_xml(content_type: str | None) -> None:
    """415 for a body declared as something else than XML (`curl -d` sends a form; a JSON client, JSON): the
    sender learns at once what is wrong instead of a parse error. No Content-Type at all is read as XML."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in ("application/xml", "text/xml") and not media.endswith("+xml"):
        raise Problem(415, "Unsupported media type", f"Content-Type {media!r}: a CEB message is sent as "
                      "application/xml (or text/xml), UTF-8")


def _enterprise(caller: Caller) -> None:
    if caller.is_operator:
        raise Problem(403, "Forbidden", "receipts are read by the enterprise they are for, with its own API key")


def _timeout():  # noqa: ANN202
    from datetime import timedelta  # noqa: PLC0415

    return timedelta(microseconds=int(ceb_settings().document_timeout_hours * 3_600_000_000))
