"""The annotation workspace in a real browser: keyboard labelling, reload, submit, required
values, Chinese and suggestions.

The server here is `psy-annotator serve` like everywhere in tests/e2e, but restartable (the
saving tests stop it mid-work), and it starts with a project "ws" whose lead is the admin, whose
annotator is the member, and which holds the four English demo dialogues (labels under the
source "demo").
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.async_api import Locator, Page, expect

from app.config import ROOT_DIR
from app.db import libpq_url
from app.i18n import gettext_for
from tests.e2e.accounts import (
    ADMIN_EMAIL,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_NAME,
    MEMBER_PASSWORD,
)
from tests.e2e.conftest import (
    CLI_TIMEOUT,
    BrowserSession,
    LiveServer,
    _cli,
    _finish,
    _free_port,
    _start_user_creation,
    _stop,
    _wait_until_healthy,
)

pytestmark = pytest.mark.browser

SLUG = "ws"
SOURCE = "demo"
DEMO_EN = ROOT_DIR / "app" / "demo_data" / "demo_en.json"


# --- a restartable server with a project ---------------------------------------------------------


@dataclass
class WorkspaceServer(LiveServer):
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*_cli(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        _stop(self.process)

    def start(self) -> None:
        """Start again on the same port and wait until it answers."""
        self.spawn()
        _wait_until_healthy(self.url, self)

    def cli(self, *commands: list[str]) -> None:
        """Run CLI commands side by side (each costs a second or two) and check they succeed."""
        runs = [
            subprocess.Popen(
                [*_cli(), *args],
                cwd=ROOT_DIR,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for args in commands
        ]
        for args, run in zip(commands, runs, strict=True):
            output, _ = run.communicate(timeout=CLI_TIMEOUT)
            assert run.returncode == 0, f"{args} failed:\n{output}"

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq_url(self.env["DATABASE_URL"]), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def live_server(fresh_db_url: str, tmp_path: Path) -> Iterator[WorkspaceServer]:
    """Overrides conftest's server (the `ui` fixture uses this one): restartable, with a project."""
    env = {
        **os.environ,
        "DATABASE_URL": fresh_db_url,
        "PSY_ANNOTATOR_SECRET_KEY": secrets.token_urlsafe(48),
        "PSY_ANNOTATOR_DEMO": "false",
        "PSY_ANNOTATOR_ENV": "test",
        "PSY_ANNOTATOR_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PSY_ANNOTATOR_DATABASE_URL", None)
    accounts = [
        (ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, True),
        (MEMBER_EMAIL, MEMBER_NAME, MEMBER_PASSWORD, False),
    ]
    creations = [
        (_start_user_creation(env, email, name, password, admin=admin), password)
        for email, name, password, admin in accounts
    ]
    port = _free_port()
    server = WorkspaceServer(
        url=f"http://127.0.0.1:{port}",
        process=None,  # type: ignore[arg-type]  # spawned just below
        log_path=tmp_path / "server.log",
        env=env,
        port=port,
    )
    server.spawn()
    try:
        for creation, password in creations:
            _finish(creation, password + "\n")
        server.cli(["project", "create", SLUG, "--name", "Workspace", "--lead", ADMIN_EMAIL])
        server.cli(
            ["project", "add-member", SLUG, "--email", MEMBER_EMAIL, "--role", "annotator"],
            ["import", str(DEMO_EN), "--project", SLUG, "--source", SOURCE],
        )
        _wait_until_healthy(server.url, server)
        yield server
    finally:
        for creation, _ in creations:
            if creation.poll() is None:
                creation.kill()
                creation.communicate()
        server.stop()
    output = server.output()
    if "Traceback (most recent call last)" in output:
        pytest.fail(f"the server logged an exception:\n{output}")


# --- helpers, shared with test_annotate_saving -------------------------------------------------


async def log_in(page: Page, email: str, password: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(re.compile(r"/projects$"))


async def take_next(page: Page, button: str = "Next dialogue", slug: str = SLUG) -> int:
    """From the annotator's home, "Next dialogue" by keyboard; returns the assignment id."""
    await page.goto(f"/projects/{slug}/annotate")
    await page.get_by_role("button", name=button).focus()
    await page.keyboard.press("Enter")
    screen = re.compile(rf"/projects/{slug}/annotate/(\d+)$")
    await expect(page).to_have_url(screen)
    await ready(page)
    found = screen.search(page.url)
    assert found is not None
    return int(found.group(1))


async def ready(page: Page) -> None:
    await expect(page.locator("#workspace")).to_have_attribute("data-ready", "true")


def turn(page: Page, n: int, lang: str = "en") -> Locator:
    return page.get_by_role("region", name=gettext_for(lang, "Turn %(n)s") % {"n": n}, exact=True)


def label(region: Locator, name: str) -> Locator:
    return region.get_by_role("button", name=name, exact=True)


async def expect_pressed(region: Locator, names: list[str], *, pressed: bool = True) -> None:
    for name in names:
        await expect(label(region, name)).to_have_attribute(
            "aria-pressed", "true" if pressed else "false"
        )


async def expect_saved(page: Page, lang: str = "en") -> None:
    await expect(page.get_by_role("status")).to_have_text(
        gettext_for(lang, "Saved"), timeout=20_000
    )


async def workspace_json(page: Page, assignment: int) -> dict[str, Any]:
    response = await page.request.get(f"/api/v1/projects/{SLUG}/assignments/{assignment}")
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


def values_of(ws: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(v["position"], v["dimension"]): v for v in ws["values"]}


# --- the tests ------------------------------------------------------------------------------------


async def test_keyboard_only_labelling_reload_and_submit(ui: BrowserSession) -> None:
    page = ui.page
    assert page is not None
    await log_in(page, MEMBER_EMAIL, MEMBER_PASSWORD)
    assignment = await take_next(page)
    status = page.get_by_role("status")
    await expect(status).to_have_text("Saved")
    await expect(page.locator(".turn--client").first).to_be_visible()
    await expect(page.locator(".turn--counselor").first).to_be_visible()

    # Turn 1 (client): a label by its key, then the text field and back.
    await page.keyboard.press("j")
    await expect(turn(page, 1)).to_be_focused()
    await page.keyboard.press("1")
    await expect_pressed(turn(page, 1), ["Anxiety"])
    await page.keyboard.press("Enter")
    observation = turn(page, 1).get_by_label("Observation", exact=True)
    await expect(observation).to_be_focused()
    # The keys are plain letters while typing: j, k, s, t and digits must not move or toggle.
    note = "Tight chest; thinks she just can't keep up, 2 hours of sleep."
    await page.keyboard.type(note)
    await expect(observation).to_have_value(note)
    await expect(observation).to_be_focused()
    await expect_pressed(turn(page, 1), ["Depression"], pressed=False)
    await page.keyboard.press("Escape")
    await expect(turn(page, 1)).to_be_focused()

    # Turn 2 (counselor): strategy takes at most two labels; a third is refused, politely.
    await page.keyboard.press("ArrowDown")
    await expect(turn(page, 2)).to_be_focused()
    await expect(turn(page, 2).get_by_role("button", name="Anxiety")).to_have_count(0)
    await page.keyboard.press("1")
    await page.keyboard.press("3")
    await page.keyboard.press("5")
    await expect_pressed(turn(page, 2), ["Question", "Reflection of Feelings"])
    await expect_pressed(turn(page, 2), ["Affirmation and Reassurance"], pressed=False)
    await expect(page.locator("#ws-message")).to_have_text(
        "At most 2 labels for Strategy. Remove one first."
    )
    await page.keyboard.press("t")
    await page.keyboard.type("Reflects the dread before asking about it.")
    await page.keyboard.press("Escape")
    await expect(turn(page, 2)).to_be_focused()

    # Turn 3 (client): a key toggles on and off.
    await page.keyboard.press("j")
    await expect(turn(page, 3)).to_be_focused()
    for key in ("2", "5", "2"):
        await page.keyboard.press(key)
    await expect_pressed(turn(page, 3), ["Fear"])
    await expect_pressed(turn(page, 3), ["Depression"], pressed=False)
    await page.keyboard.press("k")
    await expect(turn(page, 2)).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(turn(page, 1)).to_be_focused()

    # The session panel: psychotherapy takes one label, a second key replaces the first.
    session = page.get_by_role("region", name="Session annotations")
    await page.keyboard.press("s")
    await expect(session).to_be_focused()
    await page.keyboard.press("1")
    await page.keyboard.press("2")
    await expect_pressed(session, ["Solution-Focused Brief Therapy"])
    await expect_pressed(session, ["Cognitive Behavioral Therapy"], pressed=False)

    # Help and guidelines are one key away.
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_be_visible()
    await expect(help_dialog).to_contain_text("Next turn")
    await ui.shot("help")
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_be_hidden()
    await page.keyboard.press("g")
    guidelines = page.get_by_role("complementary", name="Guidelines")
    await expect(guidelines).to_be_visible()
    await expect(guidelines.get_by_role("heading", name="Strategy")).to_be_visible()
    await page.keyboard.press("g")
    await expect(guidelines).to_be_hidden()

    await expect_saved(page)
    await ui.shot("labelled-en")

    # A reload shows everything from the server.
    await page.reload()
    await ready(page)
    await expect_pressed(turn(page, 1), ["Anxiety"])
    await expect(turn(page, 1).get_by_label("Observation", exact=True)).to_have_value(note)
    await expect_pressed(turn(page, 2), ["Question", "Reflection of Feelings"])
    await expect(turn(page, 2).get_by_label("Reasoning", exact=True)).to_have_value(
        "Reflects the dread before asking about it."
    )
    await expect_pressed(turn(page, 3), ["Fear"])
    await expect_pressed(session, ["Solution-Focused Brief Therapy"])
    ws = await workspace_json(page, assignment)
    # The time spent is reported every 30 s and when the page goes away (here: the reload).
    assert ws["assignment"]["seconds_spent"] >= 1
    saved = values_of(ws)
    assert saved[(0, "emotion")]["labels"] == ["Anxiety"]
    assert saved[(0, "emotion")]["version"] == 1
    assert saved[(1, "strategy")]["labels"] == ["Question", "Reflection of Feelings"]
    assert saved[(2, "emotion")]["labels"] == ["Fear"]
    assert saved[(-1, "psychotherapy")]["labels"] == ["Solution-Focused Brief Therapy"]
    assert saved[(0, "observation")]["text"] == note

    # Ctrl+Enter submits; the screen becomes read-only, also after a reload.
    await page.keyboard.press("j")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator("#assignment-status")).to_have_text("Submitted")
    await expect(page.locator("#read-only-note")).to_be_visible()
    await expect(label(turn(page, 1), "Anxiety")).to_be_disabled()
    await expect(page.get_by_role("button", name="Submit", exact=True).first).to_be_disabled()
    await page.reload()
    await ready(page)
    await expect(label(turn(page, 1), "Anxiety")).to_be_disabled()
    await expect(turn(page, 1).get_by_label("Observation", exact=True)).not_to_be_editable()
    await page.keyboard.press("j")
    await page.keyboard.press("2")
    await expect_pressed(turn(page, 1), ["Depression"], pressed=False)
    await ui.shot("submitted")

    await page.goto(f"/projects/{SLUG}/annotate")
    await expect(page.locator("#my-progress [data-status=submitted] dd")).to_have_text("1")
    row = page.locator(f"#queue tr[data-assignment='{assignment}']")
    await expect(row.get_by_role("cell").nth(3)).to_have_text("Submitted")


async def test_submit_lists_missing_required_values(
    ui: BrowserSession, live_server: WorkspaceServer
) -> None:
    page = ui.page
    assert page is not None
    # The lead makes emotion required in the codebook editor.
    await log_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.goto(f"/projects/{SLUG}/codebook")
    await page.get_by_text("Settings of Emotion").click()
    form = page.locator("#dim-emotion-edit")
    await form.get_by_label("Required").check()
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await form.get_by_role("button", name="Save settings").click()
    assert (await posted.value).status == 200
    rows = live_server.sql(
        "SELECT d.required FROM codebook_dimensions d JOIN projects p ON p.id = d.project_id "
        "WHERE p.slug = %s AND d.key = 'emotion'",
        (SLUG,),
    )
    assert rows == [(True,)]

    page = await ui.new_page()
    ui.expect_status(422)
    await log_in(page, MEMBER_EMAIL, MEMBER_PASSWORD)
    await take_next(page)
    await expect(turn(page, 1).get_by_role("group", name=re.compile("^Emotion"))).to_be_visible()
    await page.keyboard.press("j")
    await page.keyboard.press("1")
    await expect_saved(page)
    await page.keyboard.press("Control+Enter")

    problems = page.locator("#submit-problems")
    await expect(problems).to_be_visible()
    await expect(
        page.get_by_role("heading", name="Some required values are missing:")
    ).to_be_focused()
    links = problems.get_by_role("link")
    client_turns = [3, 5, 7, 9, 11]  # dialogue 900001 alternates client and counselor
    await expect(links).to_have_text([f"Turn {n} — Emotion" for n in client_turns])
    for i, n in enumerate(client_turns):
        await expect(links.nth(i)).to_have_attribute("href", f"#turn-{n}")
    await ui.shot("missing")

    # Each link leads to its turn's emotion buttons; a key there fills it and the item goes.
    for n in client_turns:
        await links.first.focus()
        await page.keyboard.press("Enter")
        await expect(label(turn(page, n), "Anxiety")).to_be_focused()
        await page.keyboard.press("4")
        await expect_pressed(turn(page, n), ["Anger"])
    await expect(problems).to_be_hidden()
    await expect_saved(page)
    await page.get_by_role("button", name="Submit", exact=True).first.click()
    await expect(page.locator("#assignment-status")).to_have_text("Submitted")


async def test_chinese_screen_with_suggestions(
    ui: BrowserSession, live_server: WorkspaceServer
) -> None:
    live_server.sql("UPDATE projects SET suggestion_source = %s WHERE slug = %s", (SOURCE, SLUG))
    page = ui.page
    assert page is not None
    await log_in(page, MEMBER_EMAIL, MEMBER_PASSWORD)
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    assignment = await take_next(page, gettext_for("zh", "Next dialogue"))

    first = turn(page, 1, "zh")
    await expect(first).to_be_visible()
    await expect(
        page.get_by_role("button", name=gettext_for("zh", "Submit"), exact=True).first
    ).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text(gettext_for("zh", "Saved"))
    # Label buttons are named in Chinese; suggested ones are marked but not chosen.
    anxiety = label(first, "焦虑")
    await expect(anxiety).to_have_attribute("aria-pressed", "false")
    await expect(anxiety).to_have_class(re.compile(r"\blbl--suggested\b"))
    await expect(anxiety).to_have_accessible_description(gettext_for("zh", "Suggested"))
    await ui.shot("screen-zh")

    # `a` accepts the focused turn's suggestions: labels and the empty text field.
    await page.keyboard.press("j")
    await page.keyboard.press("a")
    await expect(anxiety).to_have_attribute("aria-pressed", "true")
    observation = first.get_by_role("textbox")
    await expect(observation).not_to_have_value("")
    await page.keyboard.press("j")
    await page.keyboard.press("a")
    await expect_pressed(turn(page, 2, "zh"), ["情感反映", "提问"])
    await expect_saved(page, "zh")

    # `f` then `u` flags the current turn as unclear.
    await page.keyboard.press("f")
    flag_dialog = page.get_by_role("dialog", name=gettext_for("zh", "Flag or comment"))
    await expect(flag_dialog).to_be_visible()
    await page.keyboard.press("u")
    await expect(flag_dialog).to_be_hidden()
    await expect(turn(page, 2, "zh")).to_be_focused()
    await expect(turn(page, 2, "zh").locator(".note-flag[data-flag=unclear]")).to_have_text(
        gettext_for("zh", "Unclear")
    )
    await expect_saved(page, "zh")
    await ui.shot("accepted-zh")

    saved = values_of(await workspace_json(page, assignment))
    assert saved[(0, "emotion")]["labels"] == ["Anxiety"]
    assert sorted(saved[(1, "strategy")]["labels"]) == ["Question", "Reflection of Feelings"]
    assert saved[(0, "observation")]["text"]
    notes = live_server.sql(
        "SELECT position, kind, flag FROM turn_notes WHERE assignment_id = %s", (assignment,)
    )
    assert notes == [(1, "flag", "unclear")]
