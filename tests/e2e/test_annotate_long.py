"""A 200-turn dialogue opens and stays responsive, and every one of 200 quick edits is saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e import test_annotate_workspace as support
from tests.e2e.accounts import ADMIN_EMAIL, MEMBER_EMAIL, MEMBER_PASSWORD
from tests.e2e.conftest import BrowserSession
from tests.e2e.test_annotate_workspace import (
    DEMO_EN,
    WorkspaceServer,
    expect_saved,
    log_in,
    take_next,
    turn,
)

pytestmark = pytest.mark.browser

live_server = support.live_server

TURNS = 200
LONG = "long"

# Every key press is dispatched in the page and timed there: a move to the next turn (focus and
# scroll) and a label toggled by its key (outbox written, request queued).
PRESS_KEYS = """() => {
    const started = performance.now();
    for (let i = 0; i < 200; i++) {
        for (const key of ["j", "1"]) {
            const event = new KeyboardEvent("keydown", {key: key, bubbles: true, cancelable: true});
            (document.activeElement || document.body).dispatchEvent(event);
        }
    }
    return performance.now() - started;
}"""


@pytest.fixture
def long_dialogue(live_server: WorkspaceServer, tmp_path: Path) -> None:
    """A project "long" with one 200-turn dialogue, the member as its annotator."""
    demo = json.loads(DEMO_EN.read_text())[0]
    turns = [dict(demo["dialog"][i % 12], id=f"0-{i}") for i in range(TURNS)]
    path = tmp_path / "long.json"
    path.write_text(json.dumps([dict(demo, dialog_id="990200", dialog=turns)]))
    live_server.cli(["project", "create", LONG, "--name", "Long", "--lead", ADMIN_EMAIL])
    live_server.cli(
        ["project", "add-member", LONG, "--email", MEMBER_EMAIL, "--role", "annotator"],
        ["import", str(path), "--project", LONG, "--source", "long"],
    )


@pytest.mark.usefixtures("long_dialogue")
async def test_a_200_turn_dialogue_stays_responsive(
    ui: BrowserSession, live_server: WorkspaceServer
) -> None:
    page = ui.page
    assert page is not None
    await log_in(page, MEMBER_EMAIL, MEMBER_PASSWORD)
    assignment = await take_next(page, slug=LONG)
    await expect(page.locator("section.turn")).to_have_count(TURNS)
    loaded = await page.evaluate(
        "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
    )
    assert loaded < 3000, f"the page took {loaded:.0f} ms to load"

    elapsed = await page.evaluate(PRESS_KEYS)
    assert elapsed < 2000, f"400 key presses took {elapsed:.0f} ms"
    await expect(turn(page, TURNS)).to_be_focused()
    await expect(turn(page, TURNS).locator("button.lbl[aria-pressed=true]")).to_have_count(1)
    await expect_saved(page)

    rows = live_server.sql(
        "SELECT count(*), min(version), max(version) FROM annotations WHERE assignment_id = %s",
        (assignment,),
    )
    assert rows == [(TURNS, 1, 1)]
    # No full-page screenshot of 200 turns at the end: it says nothing the test did not check.
    await page.close()
