"""Login, logout and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from app.accounts import service as accounts
from app.auth import service
from app.auth.service import LoginFailure
from app.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    SessionDep,
    SettingsDep,
    ViewerDep,
    client_ip,
    csrf_protect,
)
from app.forms import safe_next
from app.i18n import N_
from app.templating import render, translate

router = APIRouter(dependencies=[Depends(csrf_protect)])

FAILURE_MESSAGES = {
    LoginFailure.invalid: (N_("Wrong email or password."), 401),
    LoginFailure.disabled: (N_("This account is disabled. Ask an administrator."), 403),
    LoginFailure.rate_limited: (
        N_("Too many failed attempts. Wait a few minutes and try again."),
        429,
    ),
}


def secure_cookie(request: Request, configured: bool | None) -> bool:
    return configured if configured is not None else request.url.scheme == "https"


@router.get("/login")
async def login_page(request: Request, viewer: ViewerDep, next: str | None = None) -> Response:
    """The login form; a logged-in user goes straight on."""
    if viewer.user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "auth/login.html", {"next": safe_next(next), "email": ""})


@router.post("/login")
async def login(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """Check credentials under the per-account and per-address rate limits, then start a session."""
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    result = await service.authenticate(db, email, password, client_ip(request), settings)
    if result.user is None:
        assert result.failure is not None
        message, status = FAILURE_MESSAGES[result.failure]
        context = {"next": target, "email": email, "error": translate(request, message)}
        return render(request, "auth/login.html", context, status_code=status, block="login_form")
    token = await service.create_session(
        db, result.user, settings, client_ip(request), request.headers.get("user-agent")
    )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request, settings.secure_cookies),
    )
    return response


@router.post("/logout")
async def logout(viewer: ViewerDep, db: SessionDep) -> Response:
    """End this browser's session."""
    if viewer.session_token:
        await service.end_session(db, viewer.session_token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/language")
async def switch_language(
    request: Request, viewer: ViewerDep, db: SessionDep, settings: SettingsDep
) -> Response:
    """Switch the interface language; remembered on the account and in a cookie."""
    form = await request.form()
    lang = str(form.get("lang", ""))
    if lang not in ("en", "zh"):
        lang = settings.default_language
    if viewer.user is not None:
        await accounts.set_language(db, viewer.user, lang)
    response = RedirectResponse(safe_next(str(form.get("next", ""))), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
