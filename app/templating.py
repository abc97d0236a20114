"""Jinja2 templates with per-request language, CSRF token and htmx fragment rendering."""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2_fragments.fastapi import Jinja2Blocks
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from app.config import ROOT_DIR
from app.i18n import LANGUAGES, gettext_for

templates = Jinja2Blocks(directory=str(ROOT_DIR / "templates"))
env = templates.env
env.add_extension("jinja2.ext.i18n")


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    return gettext_for(ctx.get("lang", "en"), message)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    from app.i18n import translations

    return translations(ctx.get("lang", "en")).ngettext(singular, plural, n)


env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
env.globals["LANGUAGES"] = LANGUAGES


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    """Render a page, or only `block` when htmx asked for it; always `Vary: HX-Request`."""
    ctx = {
        "request": request,
        "lang": getattr(request.state, "lang", "en"),
        "user": getattr(request.state, "user", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        **(context or {}),
    }
    kwargs: dict[str, Any] = {"status_code": status_code, "background": background}
    if block and is_htmx(request):
        kwargs["block_name"] = block
    response: Response = templates.TemplateResponse(request, name, ctx, **kwargs)
    response.headers["Vary"] = "HX-Request"
    return response


def translate(request: Request, message: str) -> str:
    return gettext_for(getattr(request.state, "lang", "en"), message)
