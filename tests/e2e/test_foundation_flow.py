"""The foundation in a real browser: login, language, projects, members, CSRF, keyboard use."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.i18n import gettext_for
from tests.e2e.accounts import (
    ADMIN_EMAIL,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_NAME,
)
from tests.e2e.conftest import BrowserSession

pytestmark = pytest.mark.browser

PROJECT_NAME = "情绪支持对话 Pilot"
PROJECT_SLUG = "e2e-support"


def path_is(path: str) -> re.Pattern[str]:
    """A URL pattern for `page` expectations: this path, any query string."""
    return re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$")


async def cookie(page: Page, name: str) -> str | None:
    for c in await page.context.cookies():
        if c.get("name") == name:
            return c.get("value")
    return None


async def log_in_english(page: Page) -> None:
    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def expect_english(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("button", name="English")).to_have_attribute(
        "aria-pressed", "true"
    )


async def expect_chinese(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    await expect(page.get_by_role("button", name="中文")).to_have_attribute("aria-pressed", "true")


async def expect_chinese_projects_page(page: Page) -> None:
    await expect(page).to_have_url(path_is("/projects"))
    await expect_chinese(page)
    await expect(page).to_have_title("项目 · psy-annotator")
    await expect(page.get_by_role("heading", level=1)).to_have_text("项目")
    nav = page.get_by_role("navigation", name="主导航")
    await expect(nav.get_by_role("link")).to_have_text(["项目", "用户", "账户", "API"])
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    await expect(page.get_by_role("heading", name="新建项目")).to_be_visible()


async def test_main_flow_in_chinese(ui: BrowserSession) -> None:
    page = ui.page
    assert page is not None

    # Anonymous: the project list sends us to the login page, in English by default.
    await page.goto("/projects")
    await expect(page).to_have_url(path_is("/login"))
    assert "next=/projects" in page.url
    await expect_english(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    await ui.shot("login")

    await log_in_english(page)
    await expect(page).to_have_url(path_is("/projects"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Projects")
    await expect(page.locator(".topbar .who")).to_have_text(ADMIN_NAME)
    await expect(page.locator("#no-projects")).to_be_visible()
    await ui.shot("projects-en")

    # The header's 中文 button switches the interface and comes back to the same page.
    await page.get_by_role("button", name="中文").click()
    await expect_chinese_projects_page(page)
    await expect(page.locator("#no-projects")).to_have_text("您还不是任何项目的成员。")
    assert await cookie(page, "psy_lang") == "zh"
    await ui.shot("projects-zh")

    # Create a project through the Chinese form.
    await page.get_by_label("项目名称", exact=True).fill(PROJECT_NAME)
    await page.get_by_label("短名称（用于链接）").fill(PROJECT_SLUG)
    await page.get_by_label("描述").fill("用于端到端测试的项目。")
    await ui.shot("project-form")
    await page.get_by_role("button", name="创建项目").click()

    await expect(page).to_have_url(path_is(f"/projects/{PROJECT_SLUG}"))
    await expect_chinese(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(PROJECT_NAME)
    project_nav = page.get_by_role("navigation", name="项目")
    await expect(project_nav.get_by_role("link")).to_have_text(
        [
            gettext_for("zh", t)
            for t in (
                "Overview",
                "Dialogues",
                "Codebook",
                "Agreement",
                "Assignments",
                "Imports",
                "Members",
                "Settings",
            )
        ]
    )
    await expect(page.locator("p.description")).to_have_text("用于端到端测试的项目。")
    await expect(page.locator(".badge")).to_have_text(["项目负责人"])
    await ui.shot("project-overview")

    # Members: the creator is the only member, as lead.
    await project_nav.get_by_role("link", name="成员").click()
    await expect(page).to_have_url(path_is(f"/projects/{PROJECT_SLUG}/members"))
    await expect(page.get_by_role("heading", level=2, name="成员")).to_be_visible()
    members = page.locator("#members")
    rows = members.locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("td").nth(0)).to_have_text(ADMIN_NAME)
    await ui.shot("members")

    # Add the member by email as annotator; htmx swaps the whole #members section.
    add_form = members.locator("form").filter(has=page.get_by_role("button", name="添加成员"))
    await add_form.get_by_label("已有账户的邮箱").fill(MEMBER_EMAIL)
    await add_form.get_by_label("标注员").check()
    async with page.expect_response(
        lambda r: r.url.endswith(f"/projects/{PROJECT_SLUG}/members") and r.request.method == "POST"
    ) as added:
        await add_form.get_by_role("button", name="添加成员").click()
    response = await added.value
    assert response.status == 200
    assert response.request.headers.get("hx-request") == "true", "the form did not go through htmx"
    await expect(page).to_have_url(path_is(f"/projects/{PROJECT_SLUG}/members"))

    new_row = members.locator("tbody tr").filter(has_text=MEMBER_EMAIL)
    await expect(new_row).to_have_count(1)
    await expect(members.locator("tbody tr")).to_have_count(2)
    # The hostile name is shown as text, and nothing of it became markup.
    name_cell = new_row.locator("td").first
    await expect(name_cell).to_have_text(MEMBER_NAME)
    assert await name_cell.text_content() == MEMBER_NAME
    assert await name_cell.locator("*").count() == 0
    await expect(page.get_by_text(MEMBER_NAME, exact=True)).to_have_count(1)
    assert await page.locator("main script").count() == 0
    await expect(new_row.get_by_label("标注员")).to_be_checked()
    await expect(new_row.get_by_label("项目负责人")).not_to_be_checked()
    # The swapped section is still Chinese and the add form is ready for another member.
    await expect(members.get_by_role("heading", level=2)).to_have_text("成员")
    await expect(add_form.get_by_label("已有账户的邮箱")).to_have_value("")
    assert ui.dialogs == [], f"a dialog opened: {ui.dialogs}"
    await ui.shot("member-added")

    # A reload shows the same rows from the database.
    await page.reload()
    await expect(page.locator("#members tbody tr")).to_have_count(2)
    await expect(page.get_by_role("cell", name=MEMBER_NAME, exact=True)).to_have_count(1)

    # Log out: back on the login page, which stays Chinese thanks to the language cookie.
    await page.get_by_role("button", name="退出登录").click()
    await expect(page).to_have_url(path_is("/login"))
    await expect_chinese(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    await expect(page.get_by_label("邮箱")).to_be_visible()
    await expect(page.get_by_role("button", name="退出登录")).to_have_count(0)
    assert await cookie(page, "psy_session") is None
    assert await cookie(page, "psy_lang") == "zh"
    await ui.shot("logged-out")

    # The session really ended: the project list asks for a login again.
    await page.goto("/projects")
    await expect(page).to_have_url(path_is("/login"))
    ui.assert_clean()


async def test_language_is_remembered_per_user(ui: BrowserSession) -> None:
    page = ui.page
    assert page is not None
    await page.goto("/login")
    await expect_english(page)
    await log_in_english(page)
    await expect(page).to_have_url(path_is("/projects"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Projects")

    await page.get_by_role("button", name="中文").click()
    await expect_chinese_projects_page(page)
    await page.get_by_role("button", name="退出登录").click()
    await expect(page).to_have_url(path_is("/login"))
    await ui.shot("logged-out-zh")

    # A new browser context: no cookies, an English Accept-Language, so the login is English...
    page = await ui.new_page()
    await page.goto("/login")
    names = {c.get("name") for c in await page.context.cookies()}
    assert names == {"psy_anon"}, names  # only the anonymous CSRF binding
    await expect_english(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    await ui.shot("fresh-login-en")

    # ...but the account remembers Chinese.
    await log_in_english(page)
    await expect_chinese_projects_page(page)
    await ui.shot("projects-zh-remembered")

    # Switching back to English is remembered too.
    await page.get_by_role("button", name="English").click()
    await expect(page).to_have_url(path_is("/projects"))
    await expect_english(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Projects")
    ui.assert_clean()


async def test_wrong_password_and_missing_csrf_token(ui: BrowserSession) -> None:
    page = ui.page
    assert page is not None
    ui.expect_status(401, 403)
    await page.goto("/login")

    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill("not the password")
    async with page.expect_response(
        lambda r: r.url.endswith("/login") and r.request.method == "POST"
    ) as posted:
        await page.get_by_role("button", name="Log in").click()
    assert (await posted.value).status == 401
    await expect(page).to_have_url(path_is("/login"))
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    await expect(page.get_by_label("Email")).to_have_value(ADMIN_EMAIL)
    await expect(page.get_by_label("Password")).to_have_value("")
    assert await cookie(page, "psy_session") is None
    await ui.shot("wrong-password")

    # The right password, but the form lost its CSRF token: a 403 page, and no session.
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    removed = await page.evaluate(
        """() => {
            const field = document.querySelector('#login-form input[name="csrf_token"]');
            if (!field) return false;
            field.remove();
            return true;
        }"""
    )
    assert removed, "the login form has no csrf_token field"
    async with page.expect_response(
        lambda r: r.url.endswith("/login") and r.request.method == "POST"
    ) as posted:
        await page.get_by_role("button", name="Log in").click()
    assert (await posted.value).status == 403
    error = page.locator("#error")
    await expect(error).to_have_attribute("data-status", "403")
    await expect(error.get_by_role("heading", level=1)).to_have_text("403")
    await expect(error).to_contain_text(
        "The form has expired or the CSRF token is missing. Reload and retry."
    )
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert await cookie(page, "psy_session") is None
    await ui.shot("csrf-missing")

    # Nothing was logged in behind our back.
    await page.goto("/projects")
    await expect(page).to_have_url(path_is("/login"))
    ui.assert_clean()


async def test_keyboard_only_login(ui: BrowserSession) -> None:
    page = ui.page
    assert page is not None
    await page.goto("/login")
    email = page.get_by_label("Email")
    password = page.get_by_label("Password")

    # The email field has the focus on arrival (autofocus); the header's language buttons come
    # before it in the tab order, and Tab from there leads back to it.
    await expect(email).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("button", name="中文")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("button", name="English")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(email).to_be_focused()

    await page.keyboard.type(ADMIN_EMAIL)
    await page.keyboard.press("Tab")
    await expect(password).to_be_focused()
    await page.keyboard.type(ADMIN_PASSWORD)
    await expect(email).to_have_value(ADMIN_EMAIL)
    await ui.shot("typed")
    await page.keyboard.press("Enter")

    await expect(page).to_have_url(path_is("/projects"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Projects")
    await expect(page.locator(".topbar .who")).to_have_text(ADMIN_NAME)
    await ui.shot("logged-in")
    ui.assert_clean()
