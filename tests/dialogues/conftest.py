"""Mounts the dialogue routers on the test app until `app.main` includes them itself."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts

from app.dialogues.routes import api_router, router


def _paths(routes: APIRouter | FastAPI) -> set[str]:
    return {r.path for r in iter_route_contexts(routes.routes) if r.path is not None}


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The shared app, with each dialogue router included only if it is not there yet."""
    registered = _paths(app)
    for extra in (router, api_router):
        if not _paths(extra) <= registered:
            app.include_router(extra)
    return app
