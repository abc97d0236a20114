"""A lead follows agreement in a real browser: dashboard, filter, heatmap cell, disagreeing turn."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import expect

from app.config import ROOT_DIR
from tests.e2e.accounts import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.conftest import CLI_TIMEOUT, BrowserSession, _cli

pytestmark = pytest.mark.browser


def _load_demo(database_url: str, tmp_path: Path) -> None:
    """The `demo` command: the demo project with its dialogues and three demo annotators."""
    env = {**os.environ, "DATABASE_URL": database_url, "PSY_ANNOTATOR_ENV": "test",
           "PSY_ANNOTATOR_SECRET_KEY": secrets.token_urlsafe(48),
           "PSY_ANNOTATOR_DATA_DIR": str(tmp_path)}  # fmt: skip
    env.pop("PSY_ANNOTATOR_DATABASE_URL", None)
    done = subprocess.run([*_cli(), "demo"], cwd=ROOT_DIR, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_lead_drills_from_a_heatmap_cell_to_a_disagreeing_turn(
    ui: BrowserSession, fresh_db_url: str, tmp_path: Path
) -> None:
    _load_demo(fresh_db_url, tmp_path)
    page = ui.page
    assert page is not None
    await page.goto("/login")
    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.goto("/projects/demo/agreement")
    table = page.locator("#agreement-table")
    await expect(table.locator("tr[data-dimension='strategy']")).to_be_visible()
    await expect(page.locator("#agreement-status")).to_contain_text("Computed")
    await expect(page.locator("section.dimension-detail")).not_to_have_count(0)
    await ui.shot("dashboard")

    # Filter to one dimension: htmx swaps the results and the address follows.
    await page.get_by_label("Dimension", exact=True).select_option("strategy")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r"dimension=strategy"))
    await expect(page.locator("section.dimension-detail")).to_have_count(1)
    detail = page.locator("section.dimension-detail[data-dimension='strategy']")
    await expect(detail.locator("svg.heatmap")).to_be_visible()
    await expect(table.locator("tbody tr")).to_have_count(1)
    await ui.shot("filtered")

    # A heatmap cell of two raters who do not agree perfectly.
    cells = detail.locator("svg.heatmap a.cell-link")
    await expect(cells).not_to_have_count(0)
    disagreeing = cells.filter(has_not_text=re.compile(r"^\s*1\.00\s*$"))
    await disagreeing.first.click()
    await expect(page).to_have_url(re.compile(r"/projects/demo/agreement/units\?.*a=user"))
    units = page.locator("ol.units-list li")
    await expect(units.first).to_be_visible()
    first = units.first
    position = await first.get_attribute("data-position")
    assert position is not None
    # every listed unit shows both raters' different labels
    await expect(first.locator(".ratings .rater")).to_have_count(2)
    await ui.shot("disagreements")

    await first.locator("a.unit-link").click()
    turn = int(position) + 1
    await expect(page).to_have_url(re.compile(rf"/projects/demo/dialogues/\d+#turn-{turn}$"))
    region = page.get_by_role("region", name=f"Turn {turn}", exact=True)
    await expect(region).to_be_visible()
    await expect(region).to_have_attribute("data-position", position)
    await expect(region).to_be_in_viewport()
    await ui.shot("disagreeing-turn")
    ui.assert_clean()
