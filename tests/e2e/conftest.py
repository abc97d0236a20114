"""Real-browser fixtures: the app served by its own CLI, driven by headless Debian Chromium.

No browser is ever downloaded: Playwright drives the system `chromium` package through
`executable_path`. Each test gets a fresh database, a fresh server process and a fresh browser
context; every page's console errors, uncaught exceptions, CSP violations and dialogs are
collected and must be empty when the test ends. Screenshots go to `test-artifacts/e2e/`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from app.config import ROOT_DIR
from tests.db import artifacts_dir
from tests.e2e.accounts import (
    ADMIN_EMAIL,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_NAME,
    MEMBER_PASSWORD,
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_CHROMIUM = "/usr/bin/chromium"
MISSING_CHROMIUM = (
    "Chromium not found: install Debian's chromium and fonts-wqy-zenhei "
    "(apt-get install chromium fonts-wqy-zenhei) to run browser tests"
)

STARTUP_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0

# Reported by a CSP violation listener installed in every page (see INIT_SCRIPT).
CSP_MARKER = "[csp-violation]"
INIT_SCRIPT = (
    "document.addEventListener('securitypolicyviolation', function (e) {"
    f"  console.error('{CSP_MARKER} ' + e.violatedDirective + ' blocked ' + e.blockedURI"
    "    + ' at ' + e.sourceFile + ':' + e.lineNumber);"
    "});"
)
# Chromium logs every 4xx/5xx response as a console error; tests that expect such a response
# (a wrong password, a missing CSRF token) say which status they expect.
HTTP_STATUS_ERROR = re.compile(r"the server responded with a status of (\d{3})")


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium; a skip (or, in CI, a failure) when it is not installed."""
    candidate = os.environ.get("PSY_ANNOTATOR_CHROMIUM") or DEFAULT_CHROMIUM
    resolved = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
    if resolved is None:
        if os.environ.get("PSY_ANNOTATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PSY_ANNOTATOR_REQUIRE_BROWSER=1 but {candidate!r}: {MISSING_CHROMIUM}")
        pytest.skip(MISSING_CHROMIUM)
    return resolved


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the session; every test gets its own context."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class BrowserSession:
    """A test's browser contexts, with their collected errors and numbered screenshots."""

    browser: Browser
    base_url: str
    test_name: str
    shots_dir: Path
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)
    screenshots: list[Path] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)
    page: Page | None = None
    _checked: int = 0

    async def new_page(self) -> Page:
        """A page in a brand-new context (no cookies); it becomes `self.page`."""
        context = await self.browser.new_context(
            base_url=self.base_url,
            locale="en-US",
            viewport={"width": 1100, "height": 800},
            extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
        )
        context.set_default_timeout(5_000)
        context.set_default_navigation_timeout(10_000)
        await context.add_init_script(INIT_SCRIPT)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught exception: {exc}"))
        page.on("dialog", self._on_dialog)
        self.page = page
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if url.endswith("/favicon.ico"):
            return  # Chromium asks for it on its own; the app serves none (a 404)
        status = HTTP_STATUS_ERROR.search(message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        self.errors.append(f"console error: {message.text} ({message.location})")

    async def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def expect_status(self, *statuses: int) -> None:
        """Allow Chromium's console error for responses with these statuses."""
        self.expected_statuses.update(statuses)

    async def shot(self, step: str) -> Path:
        """A full-page screenshot `test-artifacts/e2e/<test>-<nn>-<step>.png`."""
        assert self.page is not None, "no page open"
        path = self.shots_dir / f"{self.test_name}-{len(self.screenshots) + 1:02d}-{step}.png"
        # caret="initial": hiding the caret leaves `style=""` on every input, which htmx's
        # settling then copies with setAttribute — a CSP violation the app did not cause.
        await self.page.screenshot(path=str(path), full_page=True, caret="initial")
        self.screenshots.append(path)
        return path

    def assert_clean(self) -> None:
        """No console error, uncaught exception, CSP violation or dialog so far."""
        new_errors = self.errors[self._checked :]
        self._checked = len(self.errors)
        problems = new_errors + [f"unexpected dialog: {d}" for d in self.dialogs]
        self.dialogs.clear()
        assert not problems, "the browser reported problems:\n" + "\n".join(problems)

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


@pytest.fixture
async def ui(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserSession]:
    """A fresh browser context on the live server; a final screenshot and a clean check at end."""
    shots_dir = artifacts_dir() / "e2e"
    shots_dir.mkdir(parents=True, exist_ok=True)
    test_name = _safe_name(request.node.name)
    for old in shots_dir.glob(f"{test_name}-*.png"):
        old.unlink()
    session = BrowserSession(
        browser=browser, base_url=live_server.url, test_name=test_name, shots_dir=shots_dir
    )
    await session.new_page()
    try:
        yield session
        session.assert_clean()
    finally:
        if session.page is not None and not session.page.is_closed():
            with contextlib.suppress(PlaywrightError):
                await session.shot("end")
        await session.close()


# --- the server --------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli() -> list[str]:
    """The `psy-annotator` console script next to this interpreter, else `app.cli.main`."""
    script = Path(sys.executable).parent / "psy-annotator"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def _start_user_creation(
    env: dict[str, str], email: str, name: str, password: str, *, admin: bool
) -> subprocess.Popen[str]:
    args = [*_cli(), "create-user", "--email", email, "--name", name, "--password-stdin"]
    if admin:
        args.append("--admin")
    process = subprocess.Popen(
        args,
        cwd=ROOT_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process


def _finish(process: subprocess.Popen[str], stdin: str) -> None:
    try:
        output, _ = process.communicate(stdin, timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    if process.returncode != 0:
        pytest.fail(f"{' '.join(map(str, process.args))} failed ({process.returncode}):\n{output}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_healthy(url: str, server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the server exited with {server.process.returncode} before answering "
                f"/healthz:\n{server.output()}"
            )
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310
                if response.status == 200 and response.read() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    _stop(server.process)
    pytest.fail(
        f"the server did not answer /healthz within {STARTUP_TIMEOUT:.0f} s:\n{server.output()}"
    )


@pytest.fixture
def live_server(fresh_db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """`psy-annotator serve` on a free port over a throwaway database, with two accounts."""
    env = {
        **os.environ,
        "DATABASE_URL": fresh_db_url,
        "PSY_ANNOTATOR_SECRET_KEY": secrets.token_urlsafe(48),
        "PSY_ANNOTATOR_DEMO": "false",
        "PSY_ANNOTATOR_ENV": "test",
        "PSY_ANNOTATOR_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PSY_ANNOTATOR_DATABASE_URL", None)  # it would win over DATABASE_URL
    # The accounts are created while the server starts: each CLI run costs a second or two.
    accounts = [
        (ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, True),
        (MEMBER_EMAIL, MEMBER_NAME, MEMBER_PASSWORD, False),
    ]
    creations = [
        (_start_user_creation(env, email, name, password, admin=admin), password)
        for email, name, password, admin in accounts
    ]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(url=url, process=process, log_path=log_path)
    try:
        for creation, password in creations:
            _finish(creation, password + "\n")
        _wait_until_healthy(url, server)
        yield server
    finally:
        for creation, _ in creations:
            if creation.poll() is None:
                creation.kill()
                creation.communicate()
        _stop(process)
    # A server-side crash can hide behind a friendly 500 page: the log must have no traceback.
    output = server.output()
    if "Traceback (most recent call last)" in output:
        pytest.fail(f"the server logged an exception:\n{output}")
