"""The one Alembic environment of every service (shared/migrations.py points `script_location` here and
`version_locations` at the service's own `services/<service>/migrations/versions/`).

The service's tables are found by name, `services.<service>.tables` (its `metadata`), the way uvicorn finds
an app: shared/ never imports a service by a static import (tests/unit/test_import_direction.py)."""
import importlib

from alembic import context

from shared.migrations import run_env

run_env(importlib.import_module(f"services.{context.config.attributes['service']}.tables").metadata)
