"""The codebook routers mounted on the test app (until, and after, app.main includes them)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.codebook.helpers import mount


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    return mount(app)
