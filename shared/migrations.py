"""Alembic, per service: each service has its own revisions (`services/<service>/migrations/versions/`) and its
own database; every service runs them in ONE environment, `shared/alembic_env/` (env.py, script.py.mako).

The outbox and inbox tables (shared/tables.py) are part of every service's metadata and migrations.

`python -m shared.migrations <service>` upgrades that service's database to head; services also do it at
start. `python -m shared.migrations <service> revision "message"` writes its next revision (the first one
too: a new agency needs only its tables.py and an empty `migrations/versions/` folder)."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from shared.db import create_engine
from shared.settings import settings

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
ENVIRONMENT = Path(__file__).resolve().parent / "alembic_env"


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ENVIRONMENT))
    # One location, so no separator is ever needed; "newline" keeps a path with spaces whole.
    cfg.set_main_option("path_separator", "newline")
    cfg.set_main_option("version_locations", str(SERVICES_DIR / service / "migrations" / "versions"))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["service"] = service
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return cfg


def upgrade(service: str, url: str | None = None) -> None:
    command.upgrade(alembic_config(service, url or settings().database_url(service)), "head")


def new_revision(service: str, message: str) -> None:
    """Writes a migration for what the service's tables.py has that its migrations lack (autogenerate
    against a scratch SQLite database brought to head), to be read and edited before it is committed."""
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as scratch:
        cfg = alembic_config(service, f"sqlite+aiosqlite:///{scratch}/scratch.db")
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


def run_env(target_metadata: MetaData) -> None:
    """The body of the one migrations env.py (shared/alembic_env/env.py), with the service's metadata."""
    url = context.config.get_main_option("sqlalchemy.url")

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Two instances of one service starting together must not both migrate.
            connection.execute(text("SELECT pg_advisory_xact_lock(724351)"))
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          user_module_prefix="shared.tables.")
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(main())


if __name__ == "__main__":
    # python -m shared.migrations <service>                  upgrade its database to head
    # python -m shared.migrations <service> revision "msg"   write a new migration from tables.py
    if len(sys.argv) > 3 and sys.argv[2] == "revision":
        new_revision(sys.argv[1], sys.argv[3])
    else:
        upgrade(sys.argv[1])
