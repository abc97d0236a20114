"""Typed domain errors raised by services, and the handlers that turn errors into responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.i18n import N_
from app.middleware import BodyTooLarge
from app.templating import is_htmx, render, translate

log = logging.getLogger(__name__)


def fill(message: str, params: Mapping[str, Any]) -> str:
    """A message with its %(name)s placeholders filled (left as is if it has none)."""
    if not params or "%(" not in message:
        return message
    try:
        return message % params
    except (KeyError, ValueError, TypeError):
        return message


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(fill(message, params))  # str(exc): the English text, filled in
        self.message = message
        self.params = params

    def shown(self, request: Request) -> str:
        """The message in the viewer's language, filled in."""
        return fill(translate(request, self.message), self.params)


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class Invalid(DomainError):
    status_code = 422


class NotAuthenticated(DomainError):
    status_code = 401


DEFAULT_MESSAGES = {
    401: N_("Please log in."),
    403: N_("You do not have permission to do this."),
    404: N_("Not found."),
    405: N_("This method is not allowed here."),
    409: N_("This conflicts with the current state."),
    422: N_("The request could not be understood."),
    413: N_("The upload is larger than this server accepts."),
    429: N_("Too many requests. Please wait and try again."),
    500: N_("Something went wrong on our side. The error has been logged."),
}


# Starlette's form parser refuses some forms with a 400 and an English detail: said in the
# app's words (and languages) instead. Its default part limit is 1 MB.
FORM_REFUSALS = (
    ("exceeded maximum size", N_("A form field is larger than 1 MB. Upload long text as a file.")),
    ("Too many fields", N_("The form has too many fields.")),
    ("Too many files", N_("The form has too many files.")),
    ("multipart", N_("The form data could not be read.")),
    ("Content-Disposition", N_("The form data could not be read.")),
)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(
    request: Request,
    status: int,
    message: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Response:
    """JSON for the API, a fragment for htmx, a full page otherwise; login redirect for 401."""
    text = message or DEFAULT_MESSAGES.get(status, N_("Error."))
    if _wants_json(request):
        return JSONResponse({"detail": fill(text, params or {})}, status_code=status)
    if status == 401:
        target = "/login?next=" + request.url.path
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    shown = fill(translate(request, text), params or {})
    return render(
        request,
        "error.html",
        {"status": status, "message": shown},
        status_code=status,
        block="error",
    )


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return error_response(request, exc.status_code, exc.message, exc.params)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
        generic = detail in (None, "Not Found", "Method Not Allowed")
        if detail and exc.status_code == 400:
            detail = next((said for part, said in FORM_REFUSALS if part in detail), detail)
        response = error_response(request, exc.status_code, None if generic else detail)
        for name, value in (exc.headers or {}).items():  # e.g. a 405's Allow
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": jsonable_errors(exc)}, status_code=422)
        return error_response(request, 422)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        return error_response(request, 413)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500)


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
