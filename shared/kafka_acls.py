"""Who may write and read which topic on a secured broker: the ACLs, generated from one place.

Each service is its own principal (`User:<service>`, a SCRAM user) and may:
- WRITE the topics it writes (the `writer` column of the topic catalogue, contracts/topics.py, spec §6) and the
  dead-letter topic `<topic>.dlq` of every topic it consumes (a consumer dead-letters what it failed on);
- READ the topics it consumes (its handlers' subscriptions, `services/<service>/handlers.py`) and its own
  dead-letter topics (so a dead-letter replay can run under the service's own principal);
- READ and WRITE `ops.dead-letter-replays`, the record of dead letters replayed (its back office replays in place);
- use the consumer group named after it (literal) and groups prefixed `<service>-` (a replay's own group).
Nothing else: no CREATE, DELETE, ALTER or cluster rights. Topics are created, and these ACLs applied, by the
admin principal (`super.users`) with `python -m shared.topics_admin`. READ and WRITE imply DESCRIBE.

`apply` makes the broker's ACLs for the managed principals exactly this list: it creates what is missing and
deletes what is no longer wanted (a subscription removed from the code loses its right on the next run).
The Kafka protocol's CreateAcls / DescribeAcls / DeleteAcls requests are sent with aiokafka's admin client,
whose public API has no ACL calls (aiokafka 0.14); the request classes are aiokafka's own."""
from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request

from contracts.topics import DEAD_LETTER_REPLAYS, TOPICS
from shared.registry import SERVICE_NAMES

SERVICES = SERVICE_NAMES  # every service of the registry (services/*/service.toml)

# Kafka protocol codes (org.apache.kafka.common.resource / acl).
RESOURCE = {"topic": 2, "group": 3}
RESOURCE_NAME = {v: k for k, v in RESOURCE.items()}
PATTERN = {"literal": 3, "prefixed": 4}
PATTERN_NAME = {v: k for k, v in PATTERN.items()}
OPERATION = {"READ": 3, "WRITE": 4}
OPERATION_NAME = {v: k for k, v in OPERATION.items()}
ANY, ALLOW = 1, 3


class _CreateAcls(Request[CreateAclsRequest_v1]):
    """CreateAcls v1 (with pattern types), many rules in one request (aiokafka's own wrapper takes one)."""
    API_KEY = 30

    def __init__(self, creations: list[tuple]):
        self._creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    """DeleteAcls v1, many filters in one request."""
    API_KEY = 31

    def __init__(self, filters: list[tuple]):
        self._filters = filters

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._filters)


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: `principal` may `operation` on the `resource_type` named `resource` (`pattern`)."""
    principal: str  # "User:customs"
    resource_type: str  # "topic" | "group"
    resource: str
    operation: str  # "READ" | "WRITE"
    pattern: str = "literal"  # "literal" | "prefixed"


def subscriptions(services: Iterable[str] = SERVICES) -> dict[str, frozenset[str]]:
    """Each service's consumed topics, as its handlers subscribe to them (no list kept by hand)."""
    return {name: frozenset(importlib.import_module(f"services.{name}.handlers").handlers.topics)
            for name in services}


def writes(service: str, consumed: Iterable[str]) -> set[str]:
    """The topics `service` may write: its own (catalogue writer) and the dead-letter topics of what it consumes."""
    return {t.name for t in TOPICS if t.writer == service} | {f"{name}.dlq" for name in consumed}


def acls_for(consumed_by: Mapping[str, Iterable[str]]) -> list[Acl]:
    """The whole ACL list for the services of `consumed_by` (service -> consumed topic names), sorted."""
    out: set[Acl] = set()
    for service, consumed in consumed_by.items():
        consumed = set(consumed)
        principal = f"User:{service}"
        out |= {Acl(principal, "topic", name, "WRITE") for name in writes(service, consumed)}
        out |= {Acl(principal, "topic", name, "READ") for name in consumed | {f"{c}.dlq" for c in consumed}}
        # its back office replays its own dead letters in place and records that (shared/deadletters.py)
        out |= {Acl(principal, "topic", DEAD_LETTER_REPLAYS, operation) for operation in ("READ", "WRITE")}
        out.add(Acl(principal, "group", service, "READ"))
        out.add(Acl(principal, "group", f"{service}-", "READ", "prefixed"))
    return sorted(out)


def _check(error_code: int, what: str) -> None:
    if error_code:
        raise for_code(error_code)(what)


async def current(admin: AIOKafkaAdminClient, principals: Iterable[str]) -> set[Acl]:
    """The ALLOW rules the broker holds for `principals` (on topics and groups)."""
    found: set[Acl] = set()
    for principal in principals:
        response = await admin._send_request(DescribeAclsRequest(ANY, None, ANY, principal, None, ANY, ANY))
        _check(response.error_code, f"describe ACLs of {principal}")
        for resource_type, name, pattern, rules in response.resources:
            for who, _host, operation, permission in rules:
                if (permission == ALLOW and resource_type in RESOURCE_NAME and pattern in PATTERN_NAME
                        and operation in OPERATION_NAME):
                    found.add(Acl(who, RESOURCE_NAME[resource_type], name, OPERATION_NAME[operation],
                                  PATTERN_NAME[pattern]))
                else:  # anything we would not have written (DENY, ALL, CLUSTER…) is removed too
                    found.add(Acl(who, str(resource_type), name, str(operation), str(pattern)))
    return found


async def apply(admin: AIOKafkaAdminClient, wanted: list[Acl]) -> tuple[list[Acl], list[Acl]]:
    """Makes the broker's ACLs of the principals in `wanted` equal to `wanted`; returns (created, deleted)."""
    principals = sorted({a.principal for a in wanted})
    held = await current(admin, principals)
    missing = sorted(set(wanted) - held)
    extra = sorted(held - set(wanted))
    if missing:
        response = await admin._send_request(_CreateAcls([
            (RESOURCE[a.resource_type], a.resource, PATTERN[a.pattern], a.principal, "*", OPERATION[a.operation], ALLOW)
            for a in missing]))
        for (code, message), acl in zip(response.creation_responses, missing):
            _check(code, f"create {acl}: {message}")
    if extra:
        filters = []
        for a in extra:
            if a.resource_type in RESOURCE and a.operation in OPERATION and a.pattern in PATTERN:
                filters.append((RESOURCE[a.resource_type], a.resource, PATTERN[a.pattern], a.principal, None,
                                OPERATION[a.operation], ALLOW))
            else:  # a rule in codes we do not name: delete every rule of that principal on that resource
                filters.append((int(a.resource_type), a.resource, int(a.pattern), a.principal, None, ANY, ANY))
        response = await admin._send_request(_DeleteAcls(filters))
        for result in response.filter_responses:
            _check(result[0], f"delete ACLs: {result[1]}")
    if missing or extra:
        await _until_visible(admin, principals, set(wanted))
    return missing, extra


async def _until_visible(admin: AIOKafkaAdminClient, principals: list[str], wanted: set[Acl],
                         timeout: float = 30.0) -> None:
    # In KRaft the controller commits ACL changes to the metadata log and each broker's authorizer applies
    # them a moment later; a client started right after `apply` could otherwise be refused (seen on a loaded
    # machine). Raises TimeoutError naming what is still missing if the broker never shows them.
    deadline = asyncio.get_running_loop().time() + timeout
    while (held := await current(admin, principals)) != wanted:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"ACLs not applied by the broker after {timeout:.0f} s: "
                               f"missing {sorted(wanted - held)[:3]}, extra {sorted(held - wanted)[:3]}")
        await asyncio.sleep(0.2)


if __name__ == "__main__":  # python -m shared.kafka_acls: the list the broker is given, one rule a line
    for rule in acls_for(subscriptions()):
        print(f"{rule.principal:16} {rule.operation:5} {rule.resource_type:5} {rule.pattern:8} {rule.resource}")
