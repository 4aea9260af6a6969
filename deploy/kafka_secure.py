"""The local broker's principals when `make up` runs it secured (SW_KAFKA_SECURE=1, deploy/kafka/start.sh):
one SCRAM user per service plus the super user `admin`, with random passwords made once and kept in
`<run dir>/kafka/credentials.json` (mode 0600, beside the broker's data, which holds their SCRAM hashes).

Each service process is given only its own user and password (KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD);
the admin credentials go to the broker and to the topic/ACL step (shared/topics_admin.py) alone."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from shared.kafka_acls import SERVICES

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_PLAINTEXT"


def credentials(kafka_dir: Path, users: tuple[str, ...] = SERVICES) -> dict[str, str]:
    """user -> password for `admin` and every service, created on first use and then always the same
    (the broker's SCRAM users are made from them when its data dir is formatted)."""
    path = kafka_dir / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    kafka_dir.mkdir(parents=True, exist_ok=True)
    creds = {user: secrets.token_urlsafe(24) for user in ("admin", *users)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    return creds


def broker_env(creds: dict[str, str]) -> dict[str, str]:
    """The environment deploy/kafka/start.sh needs to run (and first format) a secured broker."""
    return {"SW_KAFKA_SECURE": "1", "KAFKA_ADMIN_PASSWORD": creds["admin"],
            "KAFKA_SCRAM_USERS": " ".join(f"{u}={p}" for u, p in creds.items() if u != "admin")}


def client_env(creds: dict[str, str], user: str) -> dict[str, str]:
    """The environment that makes a process (shared/kafka.py) connect as `user`."""
    return {"KAFKA_SECURITY_PROTOCOL": PROTOCOL, "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": creds[user]}


def client_options(creds: dict[str, str], user: str) -> dict[str, str]:
    """The same as aiokafka keyword arguments, for clients made in this process (topics, ACLs, tests)."""
    return {"security_protocol": PROTOCOL, "sasl_mechanism": MECHANISM, "sasl_plain_username": user,
            "sasl_plain_password": creds[user]}
