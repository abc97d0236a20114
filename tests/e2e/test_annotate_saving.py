"""Saving in a real browser: two browsers on one value, a lost answer, and a server that goes
away while the annotator works. Nothing is lost, nothing is applied twice, nothing is
overwritten silently.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect

from tests.e2e import test_annotate_workspace as support
from tests.e2e.accounts import MEMBER_EMAIL, MEMBER_PASSWORD
from tests.e2e.conftest import BrowserSession
from tests.e2e.test_annotate_workspace import (
    SLUG,
    WorkspaceServer,
    expect_pressed,
    expect_saved,
    label,
    log_in,
    ready,
    take_next,
    turn,
)

pytestmark = pytest.mark.browser

# The restartable server with the "ws" project (the `ui` fixture runs on it).
live_server = support.live_server

CONFLICT = "This value was changed elsewhere"
RETRYING = "Not saved yet — retrying"
NOW_READ_ONLY = (
    "This dialogue is submitted and read-only. Changes not saved yet are kept in this browser "
    "and saved if a lead reopens it."
)


def forgive_failed_requests(ui: BrowserSession) -> None:
    """Chromium logs every request that got no answer; here that is the point of the test."""
    ui.errors[:] = [e for e in ui.errors if "net::ERR_" not in e]


def stored_key(assignment: int) -> str:
    """Where the workspace keeps its outbox (localStorage), per project and assignment."""
    return f"psy-annotator:outbox:{SLUG}:{assignment}"


async def outbox(page: Page, assignment: int) -> dict[str, Any]:
    stored: dict[str, Any] | None = await page.evaluate(
        "key => JSON.parse(localStorage.getItem(key) || 'null')", stored_key(assignment)
    )
    assert stored is not None, "the outbox is empty"
    return stored


async def test_two_browsers_on_one_value_get_a_conflict(
    ui: BrowserSession, live_server: WorkspaceServer
) -> None:
    ui.expect_status(409)
    first = ui.page
    assert first is not None
    await log_in(first, MEMBER_EMAIL, MEMBER_PASSWORD)
    assignment = await take_next(first)
    second = await ui.new_page()
    await log_in(second, MEMBER_EMAIL, MEMBER_PASSWORD)
    await second.goto(first.url)
    await ready(second)

    # The first browser saves a value; the second, loaded before, changes the same value.
    await first.keyboard.press("j")
    await first.keyboard.press("1")
    await expect_saved(first)
    await second.keyboard.press("j")
    await second.keyboard.press("2")
    dialog = second.get_by_role("dialog", name=CONFLICT)
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Turn 1 — Emotion")
    await expect(dialog.locator("#conflict-mine")).to_have_text("Depression")
    await expect(dialog.locator("#conflict-theirs")).to_have_text("Anxiety")
    await ui.shot("conflict")
    # It must be decided: Escape does not make it go away.
    await second.keyboard.press("Escape")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Keep mine").click()
    await expect(dialog).to_be_hidden()
    await expect_pressed(turn(second, 1), ["Depression"])
    await expect_pressed(turn(second, 1), ["Anxiety"], pressed=False)
    await expect_saved(second)

    # Now the first browser is behind; its next change on the value conflicts, it takes theirs.
    await first.keyboard.press("3")
    dialog = first.get_by_role("dialog", name=CONFLICT)
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#conflict-mine")).to_have_text("Anxiety, Sadness")
    await expect(dialog.locator("#conflict-theirs")).to_have_text("Depression")
    await dialog.get_by_role("button", name="Use theirs").click()
    await expect(dialog).to_be_hidden()
    await expect_pressed(turn(first, 1), ["Depression"])
    await expect_pressed(turn(first, 1), ["Anxiety", "Sadness"], pressed=False)
    await expect_saved(first)

    # The second browser submits; the first learns it on its next change, which it keeps.
    await second.keyboard.press("Control+Enter")
    await expect(second.locator("#assignment-status")).to_have_text("Submitted")
    await first.keyboard.press("4")
    await expect(first.locator("#ws-message")).to_have_text(NOW_READ_ONLY)
    await expect(label(turn(first, 1), "Anger")).to_be_disabled()
    await expect_pressed(turn(first, 1), ["Depression"])
    await expect_pressed(turn(first, 1), ["Anger"], pressed=False)
    kept = (await outbox(first, assignment))["entries"]
    assert [e["labels"] for e in kept] == [["Depression", "Anger"]]

    where = (assignment,)
    assert live_server.sql(
        "SELECT labels, version FROM annotations WHERE assignment_id = %s", where
    ) == [(["Depression"], 2)]
    assert live_server.sql(
        "SELECT labels, version FROM annotation_changes WHERE assignment_id = %s ORDER BY id",
        where,
    ) == [(["Anxiety"], 1), (["Depression"], 2)]


async def test_edits_made_while_the_server_is_down_arrive_once(
    ui: BrowserSession, live_server: WorkspaceServer
) -> None:
    page = ui.page
    assert page is not None
    await log_in(page, MEMBER_EMAIL, MEMBER_PASSWORD)
    assignment = await take_next(page)
    status = page.get_by_role("status")
    await page.keyboard.press("j")
    await page.keyboard.press("1")
    await expect_saved(page)

    # A lost answer: the server applies the change, the browser never hears back and retries
    # with the same change id, which the server answers from its log instead of applying again.
    async def lose_the_answer(route: Route) -> None:
        await route.fetch()
        await route.abort("connectionreset")

    await page.route("**/values", lose_the_answer, times=1)
    await page.keyboard.press("j")
    await page.keyboard.press("1")
    await expect_saved(page)
    assert live_server.sql(
        "SELECT count(*) FROM annotation_changes WHERE assignment_id = %s AND position = 1",
        (assignment,),
    ) == [(1,)]

    # The server goes away; the annotator keeps working.
    await asyncio.to_thread(live_server.stop)
    await page.keyboard.press("k")
    await page.keyboard.press("2")  # turn 1 emotion: + Depression (tried, fails)
    await expect(status).to_have_text(RETRYING)
    await page.keyboard.press("3")  # + Sadness: a second change, made while the first waits
    await page.keyboard.press("Enter")
    await page.keyboard.type("Typed while the server was down.")
    await page.keyboard.press("Escape")
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await page.keyboard.press("5")  # turn 3 emotion: Fear
    await page.keyboard.press("f")
    await page.keyboard.press("r")  # turn 3 flagged as risk content
    await page.keyboard.press("s")
    await page.keyboard.press("1")  # session psychotherapy
    await expect(status).to_have_text(RETRYING)
    await ui.shot("server-down")
    stored = await outbox(page, assignment)
    changes = [e for e in stored["entries"] if e["kind"] == "value"]
    expected = Counter((e["position"], e["dimension"]) for e in changes)
    assert expected[(0, "emotion")] == 2, stored
    assert set(expected) == {
        (0, "emotion"),
        (0, "observation"),
        (2, "emotion"),
        (-1, "psychotherapy"),
    }

    # The server is back but saves cannot get through yet: a reload replays the outbox.
    async def refuse(route: Route) -> None:
        await route.abort("connectionrefused")

    await page.route("**/api/v1/**", refuse)
    await asyncio.to_thread(live_server.start)
    await page.reload()
    await ready(page)
    await expect(status).to_have_text(RETRYING)
    await expect_pressed(turn(page, 1), ["Anxiety", "Depression", "Sadness"])
    await expect(turn(page, 1).get_by_label("Observation", exact=True)).to_have_value(
        "Typed while the server was down."
    )
    await expect_pressed(turn(page, 3), ["Fear"])
    await expect(turn(page, 3).locator(".note-flag[data-flag=risk]")).to_have_count(1)
    session = page.get_by_role("region", name="Session annotations")
    await expect_pressed(session, ["Cognitive Behavioral Therapy"])

    # Let them through: everything arrives (the backoff retries on its own).
    await page.unroute("**/api/v1/**", refuse)
    await expect_saved(page)
    assert await page.evaluate("k => localStorage.getItem(k)", stored_key(assignment)) is None

    rows = live_server.sql(
        "SELECT position, dimension, labels, text, version FROM annotations "
        "WHERE assignment_id = %s",
        (assignment,),
    )
    saved = {(p, d): (labels, text, version) for p, d, labels, text, version in rows}
    assert saved == {
        (0, "emotion"): (["Anxiety", "Depression", "Sadness"], None, 1 + expected[(0, "emotion")]),
        (0, "observation"): (
            None,
            "Typed while the server was down.",
            expected[(0, "observation")],
        ),
        (1, "strategy"): (["Question"], None, 1),
        (2, "emotion"): (["Fear"], None, 1),
        (-1, "psychotherapy"): (["Cognitive Behavioral Therapy"], None, 1),
    }
    # One logged change per version, each change id once, every outbox change among them.
    logged = live_server.sql(
        "SELECT position, dimension, change_id::text FROM annotation_changes "
        "WHERE assignment_id = %s",
        (assignment,),
    )
    per_value = Counter((p, d) for p, d, _ in logged)
    assert per_value == {key: version for key, (_, _, version) in saved.items()}
    ids = [c for _, _, c in logged]
    assert len(ids) == len(set(ids))
    assert {e["id"] for e in changes} <= set(ids)
    assert live_server.sql(
        "SELECT position, kind, flag FROM turn_notes WHERE assignment_id = %s", (assignment,)
    ) == [(2, "flag", "risk")]
    forgive_failed_requests(ui)
