"""The annotation workspace: the annotator's queue and screen, and the JSON API it saves to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from jinja2.utils import htmlsafe_json_dumps
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.annotations import saving, service
from app.annotations.deps import OwnAssignment, ReadableView, Writable
from app.annotations.schemas import NoteCreate, SkipRequest, TimeReport, ValueChange
from app.assignments import service as assignments
from app.auth.service import now
from app.db import raw_connection
from app.deps import CurrentUser, SessionDep, csrf_protect, csrf_protect_api
from app.models import Role
from app.plain_route import PlainRoute
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess
from app.templating import render, templates

router = APIRouter(dependencies=[Depends(csrf_protect)])
# Every API route here authenticates the caller itself (the save without loading the viewer).
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(csrf_protect_api)], tags=["v1"])
Annotator = Depends(RequireProjectRole(Role.annotator))


@router.get("/projects/{slug}/annotate")
async def home(
    request: Request, db: SessionDep, user: CurrentUser, access: ProjectAccess = Annotator
) -> Response:
    """An annotator's queue and progress, and the "next dialogue" button."""
    items = await assignments.queue(db, access.project, user)
    counts = {s: sum(i.assignment.status == s for i in items) for s in
              ("assigned", "in_progress", "submitted", "skipped")}  # fmt: skip
    can_next = await assignments.has_work(db, access.project, user)
    context = {"access": access, "queue": items, "progress": counts, "can_next": can_next}
    return render(request, "annotate/home.html", context)


@router.post("/projects/{slug}/annotate/next")
async def next_dialogue(
    request: Request, db: SessionDep, user: CurrentUser, access: ProjectAccess = Annotator
) -> Response:
    """Open unfinished work, or take a new dialogue that still needs annotators."""
    assignment = await assignments.next_for(db, access.project, user)
    slug = access.project.slug
    if assignment is None:
        return RedirectResponse(f"/projects/{slug}/annotate?none=1", status_code=303)
    return RedirectResponse(f"/projects/{slug}/annotate/{assignment.id}", status_code=303)


@router.get("/projects/{slug}/annotate/{assignment_id}")
async def screen(request: Request, found: ReadableView, db: SessionDep) -> Response:
    """The workspace for one dialogue (read-only for leads, reviewers and after submit)."""
    ws = await service.workspace(db, found.access.project, found.assignment)
    ws["read_only"] = ws["read_only"] or not found.is_owner
    key = await service.codebook_key(db, found.access.project)
    book = book_parts(key, ws["codebook"], request.state.lang, ws["read_only"])
    context = {"access": found.access, "ws": ws, "book": book, **screen_context(ws)}
    return render(request, "annotate/screen.html", context)


_BOOK_PARTS: dict[tuple[Any, ...], dict[str, Any]] = {}


def book_parts(
    key: tuple[str, int, int], codebook: dict[str, Any], lang: str, read_only: bool
) -> dict[str, Any]:
    """The screen's parts made of the codebook alone (guidelines, label buttons, its JSON),
    rendered once per codebook version, language and read-only state (`_book.html`)."""
    parts = _BOOK_PARTS.get((*key, lang, read_only))
    if parts is None:
        module: Any = templates.env.get_template("annotate/_book.html").make_module({"lang": lang})
        zh = lang == "zh"
        buttons: dict[str, Any] = {}
        for dim in codebook["dimensions"]:
            if dim["kind"] == "label":
                module.label_buttons(dim, zh, read_only, buttons)
        policies = templates.env.policies
        parts = {
            "buttons": buttons,
            "guidelines": module.guidelines(codebook["dimensions"], zh),
            "codebook_json": htmlsafe_json_dumps(
                codebook, policies["json.dumps_function"], **policies["json.dumps_kwargs"]
            ),
        }
        if len(_BOOK_PARTS) > 256:
            _BOOK_PARTS.clear()
        _BOOK_PARTS[(*key, lang, read_only)] = parts
    return parts


def screen_context(ws: dict[str, Any]) -> dict[str, Any]:
    """The screen's lookups by position: values and suggestions per dimension, notes."""
    values_at: dict[int, dict[str, Any]] = {}
    for v in ws["values"]:
        values_at.setdefault(v["position"], {})[v["dimension"]] = v
    suggested_at: dict[int, dict[str, Any]] = {}
    for s in ws["suggestions"]:
        suggested_at.setdefault(s["position"], {})[s["dimension"]] = s
    notes_at: dict[int, list[dict[str, Any]]] = {}
    for n in ws["notes"]:
        notes_at.setdefault(n["position"], []).append(n)
    return {"values_at": values_at, "suggested_at": suggested_at, "notes_at": notes_at}


@api_router.post("/projects/{slug}/assignments/next")
async def api_next(
    db: SessionDep, user: CurrentUser, access: ProjectAccess = Annotator
) -> Response:
    """Like the button: open work first, else a new dialogue; 204 when nothing is left."""
    assignment = await assignments.next_for(db, access.project, user)
    if assignment is None:
        return Response(status_code=204)
    return JSONResponse(await service.workspace(db, access.project, assignment))


@api_router.get("/projects/{slug}/assignments/{assignment_id}")
async def api_workspace(found: ReadableView, db: SessionDep) -> dict[str, Any]:
    """The assignment, its dialogue, the codebook, the values with their versions."""
    ws = await service.workspace(db, found.access.project, found.assignment)
    ws["read_only"] = ws["read_only"] or not found.is_owner
    return ws


async def api_save(own: OwnAssignment, request: Request) -> Response:
    """Save one value: idempotent by change id; 409 with the current value when stale."""
    try:
        async with raw_connection(request.app.state.sessionmaker.kw["bind"]) as conn:
            saved = await saving.save_as(conn, own.who, own.change, now())
    except saving.StaleValue as exc:
        return JSONResponse({"detail": str(exc), "current": exc.current}, status_code=409)
    return JSONResponse(saved)


SAVE_PATH = "/api/v1/projects/{slug}/assignments/{assignment_id}/values"


def add_save_route(app: FastAPI) -> None:
    """The save, the busiest route, on the app's own router, before the included routers.

    FastAPI (0.160 and later) matches a route of an included router twice per request, once
    to choose the router and once inside it, and serves it through the inclusion's wrapper;
    a route of the app's router is matched once and served by its own ASGI app, which a
    `PlainRoute` keeps lean. Its one dependency checks CSRF too (`OwnAssignment`).
    """
    app.router.add_api_route(
        SAVE_PATH,
        api_save,
        methods=["POST"],
        tags=["v1"],
        route_class_override=PlainRoute,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": ValueChange.model_json_schema()}}}},
    )  # fmt: skip


@api_router.post("/projects/{slug}/assignments/{assignment_id}/submit")
async def api_submit(found: Writable, db: SessionDep, user: CurrentUser) -> Response:
    """Submit; 422 lists the missing required values."""
    try:
        await service.submit(db, found.access.project, found.assignment, user.id)
    except service.Incomplete as exc:
        await db.rollback()
        return JSONResponse({"detail": str(exc), "missing": exc.missing}, status_code=422)
    return JSONResponse({"status": "submitted"})


@api_router.post("/projects/{slug}/assignments/{assignment_id}/skip")
async def api_skip(
    body: SkipRequest, found: Writable, db: SessionDep, user: CurrentUser
) -> dict[str, str]:
    """Pass on a dialogue with a reason; it goes back to the pool."""
    await assignments.skip(db, user, found.assignment, body.reason)
    return {"status": "skipped"}


@api_router.post("/projects/{slug}/assignments/{assignment_id}/time", status_code=204)
async def api_time(body: TimeReport, found: Writable, db: SessionDep) -> Response:
    """Time spent in the workspace since the last report."""
    await assignments.add_time(db, found.assignment, body.seconds)
    return Response(status_code=204)


@api_router.post("/projects/{slug}/assignments/{assignment_id}/notes")
async def api_note(
    body: NoteCreate, found: Writable, db: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    """Flag or comment a turn."""
    note = await service.add_note(db, found.assignment, user.id, body)
    return {"id": note.id, "position": note.position, "kind": note.kind, "flag": note.flag,
            "text": note.text}  # fmt: skip


@router.get("/projects/{slug}/dialogues/{dialogue_id}/history/{position}")
async def turn_history(
    request: Request,
    dialogue_id: int,
    position: int,
    db: SessionDep,
    access: ProjectAccess = Depends(RequireProjectRole(Role.lead, Role.reviewer)),
) -> Response:
    """Who changed what on one turn (position -1: the session), and its flags and comments."""
    from app.dialogues.service import get_dialogue

    dialogue = await get_dialogue(db, access.project, dialogue_id)
    context = {
        "access": access,
        "dialogue": dialogue,
        "position": position,
        "changes": await service.history(db, dialogue.id, position),
        "notes": await service.notes(db, dialogue.id, position),
        "names": await service.annotator_names(db, dialogue.id),
    }
    return render(request, "annotate/history.html", context, block="history")
