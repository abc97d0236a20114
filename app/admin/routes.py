"""Administration of accounts: create, disable, enable, invite."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from app.accounts import service
from app.accounts.schemas import InvitationCreate, UserCreate
from app.deps import AdminUser, SessionDep, SettingsDep, csrf_protect
from app.errors import Conflict
from app.forms import read_form
from app.templating import render, translate

router = APIRouter(prefix="/admin", dependencies=[Depends(csrf_protect)])


async def _users_page(
    request: Request, db: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {
        "users": await service.list_users(db),
        "values": {},
        "errors": {},
        "invite_errors": {},
        **extra,
    }
    return render(request, "admin/users.html", context, status_code=status_code)


@router.get("/users")
async def users_page(request: Request, admin: AdminUser, db: SessionDep) -> Response:
    """All accounts (administrators only)."""
    return await _users_page(request, db)


@router.post("/users")
async def create_user(request: Request, admin: AdminUser, db: SessionDep) -> Response:
    """An administrator creates an account with an initial password."""
    data, values, errors = await read_form(request, UserCreate)
    if data is not None:
        try:
            await service.create_user(db, admin.id, data)
        except Conflict as exc:
            errors = {"email": exc.message}
    if errors:
        shown = {k: translate(request, v) for k, v in errors.items()}
        return await _users_page(request, db, 422, values=values, errors=shown)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/disable")
async def disable_user(user_id: int, admin: AdminUser, db: SessionDep) -> Response:
    """Disable an account; its sessions end at once."""
    await service.set_active(db, admin.id, await service.get_user(db, user_id), False)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/enable")
async def enable_user(user_id: int, admin: AdminUser, db: SessionDep) -> Response:
    await service.set_active(db, admin.id, await service.get_user(db, user_id), True)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/invitations")
async def create_invitation(
    request: Request, admin: AdminUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Create an expiring invitation link, shown once to the administrator."""
    data, values, errors = await read_form(request, InvitationCreate)
    if data is not None:
        try:
            _, token = await service.create_invitation(db, admin.id, data, settings.invitation_days)
        except Conflict as exc:
            errors = {"email": exc.message}
        else:
            link = str(request.base_url).rstrip("/") + f"/invite/{token}"
            return await _users_page(request, db, invite_link=link)
    shown = {k: translate(request, v) for k, v in errors.items()}
    return await _users_page(request, db, 422, invite_values=values, invite_errors=shown)
