"""Importing in a real browser: upload, live progress, report, errors, browse, search, view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from app.config import ROOT_DIR
from tests.e2e.accounts import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.conftest import BrowserSession

pytestmark = pytest.mark.browser
DEMO_ZH = ROOT_DIR / "app" / "demo_data" / "demo_zh.json"


async def test_upload_progress_report_browse_and_view(ui: BrowserSession, tmp_path: Path) -> None:
    page = ui.page
    assert page is not None
    await page.goto("/login")
    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_label("Project name").fill("Corpus")
    await page.get_by_label("Short name (used in links)").fill("corpus")
    await page.get_by_role("button", name="Create project").click()
    await page.get_by_role("link", name="Imports").click()
    await expect(page.locator("#no-imports")).to_be_visible()

    await page.get_by_label("File", exact=True).set_input_files(str(DEMO_ZH))
    await page.get_by_label("Source name for the labels in the file").fill("release")
    await ui.shot("upload-form")
    await page.get_by_role("button", name="Upload and import").click()
    await expect(page).to_have_url(re.compile(r"/projects/corpus/imports/\d+$"))
    # The in-process worker imports it; the page polls until the report replaces the bar.
    await expect(page.locator("#import-progress")).to_have_attribute(
        "data-status", "succeeded", timeout=20_000
    )
    report = page.locator("#import-report")
    await expect(report.get_by_role("row", name=re.compile("New dialogues"))).to_contain_text("4")
    await ui.shot("report")

    broken = tmp_path / "broken.json"
    broken.write_bytes(DEMO_ZH.read_bytes()[:500])
    await page.goto("/projects/corpus/imports")
    await page.get_by_label("File", exact=True).set_input_files(str(broken))
    await page.get_by_role("button", name="Upload and import").click()
    await expect(page.locator("#import-progress")).to_have_attribute(
        "data-status", "failed", timeout=20_000
    )
    await expect(page.locator("#import-errors tr[data-code='truncated_json']")).to_have_count(1)
    await ui.shot("failed-report")

    ui.expect_status(409)
    await page.goto("/projects/corpus/imports")
    await page.get_by_label("File", exact=True).set_input_files(str(DEMO_ZH))
    await page.get_by_label("Source name for the labels in the file").fill("release")
    await page.get_by_role("button", name="Upload and import").click()
    await expect(page.locator("#upload-error")).to_contain_text("already imported under source")

    await page.get_by_role("link", name="Dialogues").click()
    await page.get_by_label("Search the text").fill("记录每天的活动")
    await page.get_by_role("button", name="Filter").click()
    results = page.locator("#dialogue-results")
    await expect(results.locator("tbody tr")).to_have_count(1)
    await expect(results).to_contain_text("900006")
    await ui.shot("search")
    await results.get_by_role("link", name="900006").click()
    first = page.get_by_role("region", name="Turn 1", exact=True)
    await expect(first).to_contain_text("上周我们约好记录每天的活动和心情")
    await expect(page.locator(".turn--counselor").first).to_be_visible()
    await expect(page.locator(".turn--client").first).to_be_visible()
    await ui.shot("dialogue")
