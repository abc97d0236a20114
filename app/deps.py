"""Request-wide dependencies: the database session, the viewer, CSRF, and typed aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.config import Settings
from app.errors import Forbidden, NotAuthenticated
from app.i18n import negotiate
from app.models import User
from app.security import csrf_token, csrf_valid, new_token

SESSION_COOKIE = "psy_session"
ANON_COOKIE = "psy_anon"
LANG_COOKIE = "psy_lang"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]


async def get_settings_dep(request: Request) -> Settings:  # async: no worker thread per call
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@dataclass(frozen=True)
class UserView:
    """What templates show of the viewer; a plain copy survives a rolled-back transaction."""

    id: int
    name: str
    email: str
    is_admin: bool
    language: str

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(user.id, user.name, user.email, user.is_admin, user.language)


@dataclass
class Viewer:
    user: User | None
    session_token: str | None = None
    via_token: bool = False


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def load_viewer(request: Request, db: SessionDep, settings: SettingsDep) -> Viewer:
    """Who is asking (session cookie, or bearer token on the API), and their language."""
    viewer = await _authenticate(request, db, settings)
    request.state.user = UserView.of(viewer.user) if viewer.user else None
    request.state.viewer = viewer
    request.state.lang = _language(request, viewer.user, settings)
    binding = _csrf_binding(request, viewer)
    request.state.csrf_token = csrf_token(request.app.state.secret, binding)
    return viewer


async def _authenticate(request: Request, db: AsyncSession, settings: Settings) -> Viewer:
    bearer = _bearer(request)
    if bearer is not None:
        user = await auth_service.resolve_api_token(db, bearer)
        if user is None:
            raise NotAuthenticated("Invalid or revoked API token.")
        return Viewer(user=user, via_token=True)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user = await auth_service.resolve_session(db, token, settings)
        if user is not None:
            return Viewer(user=user, session_token=token)
    return Viewer(user=None)


def _language(request: Request, user: User | None, settings: Settings) -> str:
    if user is not None:
        return user.language
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in ("en", "zh"):
        return cookie
    return negotiate(request.headers.get("Accept-Language"), settings.default_language)


def _csrf_binding(request: Request, viewer: Viewer) -> str:
    if viewer.session_token:
        return "s:" + viewer.session_token
    anon = request.cookies.get(ANON_COOKIE)
    if not anon:
        anon = new_token(18)
        request.state.new_anon_cookie = anon
    return "a:" + anon


ViewerDep = Annotated[Viewer, Depends(load_viewer)]


async def csrf_protect(request: Request, viewer: ViewerDep) -> None:
    """Every state-changing request carries the CSRF token (header or form field)."""
    if request.method in SAFE_METHODS or viewer.via_token:
        return
    await _check_csrf(request)


async def csrf_protect_api(request: Request) -> None:
    """`csrf_protect` for API routers whose routes all authenticate the caller themselves.

    The same rule without loading the viewer first: a bearer token on the API is what makes
    `load_viewer` authenticate by token alone (`via_token`, no cookies), so it is what exempts
    a request here; an invalid token is refused (401) by the route's own authentication.
    """
    if request.method in SAFE_METHODS or _bearer(request) is not None:
        return
    await _check_csrf(request)


async def _check_csrf(request: Request) -> None:
    supplied = request.headers.get(CSRF_HEADER)
    if not supplied and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    bindings = []
    if session := request.cookies.get(SESSION_COOKIE):
        bindings.append("s:" + session)
    if anon := request.cookies.get(ANON_COOKIE):
        bindings.append("a:" + anon)
    if not csrf_valid(request.app.state.secret, supplied, bindings):
        raise Forbidden("The form has expired or the CSRF token is missing. Reload and retry.")


def credential(request: Request) -> tuple[str, str] | None:
    """What the caller authenticates with, as `load_viewer` reads it: ("token", an API
    request's bearer token) or else ("session", the session cookie); None without either."""
    bearer = _bearer(request)
    if bearer is not None:
        return ("token", bearer)
    session = request.cookies.get(SESSION_COOKIE)
    return ("session", session) if session else None


def _bearer(request: Request) -> str | None:
    """The API token of an API request that carries one (it then authenticates alone)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer ") and request.url.path.startswith("/api/"):
        return auth[7:].strip()
    return None


def _is_form(request: Request) -> bool:
    ctype = request.headers.get("content-type", "")
    return ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


async def current_user(viewer: ViewerDep) -> User:
    if viewer.user is None:
        raise NotAuthenticated("Please log in.")
    return viewer.user


async def current_admin(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Only administrators can do this.")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(current_admin)]
