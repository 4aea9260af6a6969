"""The operator console (spec §7.4): `GET /console` on the gateway. See docs/console.md."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.gateway.console.routes import HERE, NotSignedIn, not_signed_in, router


def install(app: FastAPI) -> None:
    """Adds the console's pages, its static files (/console/static: our CSS and script, the vendored
    htmx and Chart.js) and its sign-in redirect to the gateway's app. Nothing of it is in the OpenAPI
    description."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(NotSignedIn, not_signed_in)


__all__ = ["install"]
