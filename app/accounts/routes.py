"""The account page (password, sessions, API tokens) and accepting an invitation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from app.accounts import service
from app.accounts.schemas import InvitationAccept, PasswordChange, TokenCreate
from app.auth import service as auth_service
from app.auth.routes import secure_cookie
from app.deps import (
    SESSION_COOKIE,
    CurrentUser,
    SessionDep,
    SettingsDep,
    ViewerDep,
    client_ip,
    csrf_protect,
)
from app.errors import Invalid
from app.forms import read_form
from app.models import User
from app.security import token_digest
from app.templating import render, translate

router = APIRouter(dependencies=[Depends(csrf_protect)])


async def _account_context(db: SessionDep, user: User, viewer: ViewerDep) -> dict[str, Any]:
    current = token_digest(viewer.session_token) if viewer.session_token else b""
    return {
        "sessions": await auth_service.list_sessions(db, user.id),
        "current_session": current,
        "tokens": await service.list_api_tokens(db, user),
        "errors": {},
    }


@router.get("/account")
async def account_page(
    request: Request, user: CurrentUser, db: SessionDep, viewer: ViewerDep
) -> Response:
    """The caller's own account."""
    return render(request, "account/account.html", await _account_context(db, user, viewer))


@router.post("/account/password")
async def change_password(
    request: Request, user: CurrentUser, db: SessionDep, viewer: ViewerDep, settings: SettingsDep
) -> Response:
    """Change the password; every session ends and this browser gets a fresh one."""
    data, _, errors = await read_form(request, PasswordChange)
    if data is not None:
        try:
            await service.change_password(db, user, data.current_password, data.new_password)
        except Invalid as exc:
            errors = {"current_password": exc.message}
    if errors:
        context = await _account_context(db, user, viewer)
        context["errors"] = {k: translate(request, v) for k, v in errors.items()}
        return render(request, "account/account.html", context, status_code=422)
    token = await auth_service.create_session(
        db, user, settings, client_ip(request), request.headers.get("user-agent")
    )
    response = RedirectResponse("/account?changed=1", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request, settings.secure_cookies),
    )
    return response


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(session_id: str, user: CurrentUser, db: SessionDep) -> Response:
    """End one of the caller's sessions (for example a forgotten browser)."""
    await auth_service.revoke_session(db, user.id, session_id)
    return RedirectResponse("/account", status_code=303)


@router.post("/account/tokens")
async def create_token(
    request: Request, user: CurrentUser, db: SessionDep, viewer: ViewerDep
) -> Response:
    """Create a personal API token, shown once."""
    data, _, errors = await read_form(request, TokenCreate)
    context = await _account_context(db, user, viewer)
    if data is None:
        context["errors"] = {k: translate(request, v) for k, v in errors.items()}
        return render(request, "account/account.html", context, status_code=422, block="tokens")
    _, raw = await service.create_api_token(db, user, data.name)
    context["tokens"] = await service.list_api_tokens(db, user)
    context["new_token"] = raw
    return render(request, "account/account.html", context, block="tokens")


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: int, user: CurrentUser, db: SessionDep, viewer: ViewerDep
) -> Response:
    """Revoke one of the caller's API tokens."""
    await service.revoke_api_token(db, user, token_id)
    context = await _account_context(db, user, viewer)
    return render(request, "account/account.html", context, block="tokens")


@router.get("/invite/{token}")
async def invitation_page(request: Request, token: str, db: SessionDep) -> Response:
    """The form behind an invitation link; used or expired links are 404."""
    invitation = await service.open_invitation(db, token)
    context = {"invitation": invitation, "token": token, "values": {}, "errors": {}}
    return render(request, "account/invite.html", context)


@router.post("/invite/{token}")
async def accept_invitation(request: Request, token: str, db: SessionDep) -> Response:
    """Create the invited account; the link then stops working."""
    invitation = await service.open_invitation(db, token)
    data, values, errors = await read_form(request, InvitationAccept)
    if data is None:
        context = {
            "invitation": invitation,
            "token": token,
            "values": values,
            "errors": {k: translate(request, v) for k, v in errors.items()},
        }
        return render(request, "account/invite.html", context, status_code=422)
    await service.accept_invitation(db, token, data)
    return RedirectResponse("/login?invited=1", status_code=303)
