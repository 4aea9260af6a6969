"""`python -m tooling.contracts.suite platform|agency|scenarios|examples ...`

Exit status: 0 clean (every document valid, every scenario passed), 1 violations or failed scenarios,
2 the suite could not run (bad arguments, broker unreachable, topics missing)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from shared.settings import DEV_CUSTOMS_SEALING_PUBLIC_KEY

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    from tooling.contracts.suite.golden import ROLES
    from tooling.contracts.suite.platform import KINDS

    top = argparse.ArgumentParser(prog="python -m tooling.contracts.suite", description=(
        "The single window's contract suite: check a platform's documents, or an agency's answers on Kafka, "
        "against the published contracts and the domain rules."))
    sub = top.add_subparsers(dest="mode", required=True)

    p = sub.add_parser("platform", help="check JSON documents (orders, payments, waybills, ...) and the rules "
                                        "between them; optionally submit them to a sandbox gateway")
    p.add_argument("paths", nargs="+", metavar="DIR_OR_FILE",
                   help="JSON documents and CEB messages (*.xml), or directories read recursively")
    p.add_argument("--ceb", action="store_true",
                   help="every file named is a CEB message, whatever its name (directories: *.xml are anyway)")
    p.add_argument("--kind", choices=sorted(KINDS), help="every document is of this kind (default: told by its "
                                                         "shape, else by its file name)")
    p.add_argument("--no-cross-checks", action="store_true",
                   help="check each document on its own only (e.g. a payment firm with no orders at hand)")
    p.add_argument("--gateway", metavar="URL", help="also submit every document to this gateway and report answers")
    p.add_argument("--api-key", metavar="KEY", help="the API key for --gateway")
    p.add_argument("--ceb-key", action="append", default=[], metavar="CODE=KEY",
                   help="post the CEB messages whose BaseTransfer/copCode is CODE with KEY (repeatable; "
                        "default: --api-key)")
    p.add_argument("--poll", type=float, default=0.0, metavar="SECONDS",
                   help="after posting CEB messages, read /ceb/v1/receipts for up to SECONDS until every held "
                        "record has its later receipt")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    a = sub.add_parser("agency", help="play golden events onto a broker and check an agency's answers")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--bootstrap", required=True, metavar="HOST:PORT", help="the Kafka bootstrap servers")
    a.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="time limit for every answer of the run (default 60)")
    a.add_argument("--customs-public-key", default=DEV_CUSTOMS_SEALING_PUBLIC_KEY, metavar="BASE64",
                   help="customs' public sealing key identity numbers are sealed to (default: the dev key)")
    a.add_argument("--topic-prefix", default="", metavar="PREFIX",
                   help="use PREFIX + every topic name (a sandbox's own copies of the topics)")
    a.add_argument("--create-topics", action="store_true", help="create missing topics (4 partitions)")
    a.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="run only this scenario (repeatable; see the `scenarios` mode)")
    a.add_argument("--json", action="store_true", help="print the report as JSON")

    s = sub.add_parser("scenarios", help="list the golden scenarios")
    s.add_argument("--role", choices=ROLES)

    e = sub.add_parser("examples", help="write a valid, consistent set of example documents to a directory")
    e.add_argument("directory", type=Path)
    e.add_argument("--ceb", action="store_true", help="write the examples as customs' CEB messages (*.xml, by "
                                                      "tooling/ceb/writer.py) beside the registrations")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return {"platform": platform_mode, "agency": agency_mode, "scenarios": scenarios_mode,
            "examples": examples_mode}[args.mode](args)


def platform_mode(args: argparse.Namespace) -> int:
    from tooling.contracts.suite import report, sandbox
    from tooling.contracts.suite.platform import check_platform_documents

    if args.gateway and not args.api_key:
        print("--gateway needs --api-key", file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        ceb_keys = dict(k.split("=", 1) for k in args.ceb_key)
    except ValueError:
        print("--ceb-key takes CODE=KEY", file=sys.stderr)
        return EXIT_CANNOT_RUN
    checked = check_platform_documents(args.paths, kind=args.kind, cross=not args.no_cross_checks, ceb=args.ceb)
    # Documents made from CEB records are not submitted as REST bodies: their messages are posted as they are.
    rest = [d for d in checked.documents if checked.ceb is None or d.location not in checked.ceb.origins]
    answers = sandbox.submit(rest, args.gateway, args.api_key) if args.gateway else []
    ceb_run = (sandbox.submit_ceb(checked.ceb.messages, args.gateway, args.api_key, ceb_keys, args.poll)
               if args.gateway and checked.ceb is not None else None)
    if args.json:
        out = report.platform_json(checked)
        if args.gateway:
            out["gateway"] = {"url": args.gateway, "answers": sandbox.answers_json(answers)}
            if ceb_run is not None:
                out["gateway"]["ceb"] = sandbox.ceb_json(ceb_run)
        print(json.dumps(out, indent=2))
    else:
        sys.stdout.write(report.platform_text(checked))
        if args.gateway and (rest or ceb_run is None):
            sys.stdout.write(sandbox.answers_text(answers, args.gateway))
        if ceb_run is not None:
            sys.stdout.write(sandbox.ceb_text(ceb_run, args.gateway))
    refused = any(a.status is not None and not a.accepted for a in answers) or (ceb_run is not None and ceb_run.refused)
    return EXIT_OK if checked.clean and not refused else EXIT_FAILED


def agency_mode(args: argparse.Namespace) -> int:
    from tooling.contracts.suite import report
    from tooling.contracts.suite.agency import AgencyRun, SuiteError, run_agency_suite

    # The client's own retries (a partition leader moving, a topic just created) are not the report's news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run = AgencyRun(role=args.role, bootstrap=args.bootstrap, timeout=args.timeout,
                    customs_public_key=args.customs_public_key, topic_prefix=args.topic_prefix,
                    create_topics=args.create_topics, only=tuple(args.scenario))
    try:
        result = asyncio.run(run_agency_suite(run))
    except SuiteError as err:
        print(f"contract suite could not run: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.json:
        print(json.dumps(report.agency_json(result), indent=2))
    else:
        sys.stdout.write(report.agency_text(result))
    return EXIT_OK if result.passed else EXIT_FAILED


def scenarios_mode(args: argparse.Namespace) -> int:
    from tooling.contracts.suite.golden import ROLES, Golden, scenarios_for

    golden = Golden()
    for role in [args.role] if args.role else ROLES:
        print(f"{role}:")
        for s in scenarios_for(role, golden):
            print(f"  {s.name:<36} {s.title}")
    return EXIT_OK


def examples_mode(args: argparse.Namespace) -> int:
    from tooling.contracts.suite.golden import example_documents

    args.directory.mkdir(parents=True, exist_ok=True)
    if args.ceb:
        from tooling.contracts.suite.ceb import example_messages

        for name, content in example_messages().items():
            data = content if isinstance(content, bytes) else (
                json.dumps(content, indent=2, ensure_ascii=False) + "\n").encode()
            (args.directory / name).write_bytes(data)
            print(args.directory / name)
        return EXIT_OK
    for name, body in example_documents().items():
        (args.directory / name).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(args.directory / name)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
