"""Dialogue pages and API: the filtered list and the read-only view (lead, reviewer, exporter)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.codebook.core import load as load_codebook
from app.deps import SessionDep, csrf_protect
from app.dialogues import service
from app.dialogues.schemas import (
    MAX_ID,
    BatchOut,
    DialogueDetailOut,
    DialogueFilters,
    DialogueItemOut,
    DialogueOut,
    DialoguePageOut,
    SourceAnnotationOut,
    TurnOut,
)
from app.formats.model import PSYCHOTHERAPY, TOPIC
from app.forms import field_errors
from app.i18n import N_
from app.models import Role
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess
from app.templating import render, translate

router = APIRouter(dependencies=[Depends(csrf_protect)])
api_router = APIRouter(prefix="/api/v1", tags=["v1"], dependencies=[Depends(csrf_protect)])

# Annotators get their own queue; browsing every dialogue is for the other roles.
DialogueBrowser = Annotated[
    ProjectAccess, Depends(RequireProjectRole(Role.lead, Role.reviewer, Role.exporter))
]
DialogueId = Annotated[int, Path(ge=1, le=MAX_ID)]
FILTER_FIELDS = ("q", "language", "topic", "psychotherapy", "batch", "status")


def _full_page(request: Request) -> bool:
    """htmx asks for the whole page when it restores history it has not cached."""
    return request.headers.get("HX-History-Restore-Request") == "true"


# The status filter's choices (`schemas.STATUSES`), as the page shows them.
STATUS_NAMES = {
    "unassigned": N_("Not assigned"),
    "in_progress": N_("In progress"),
    "complete": N_("Complete"),
    "skipped": N_("Skipped by someone"),
}


async def _choices(request: Request, db: SessionDep, access: ProjectAccess) -> dict[str, Any]:
    """What the filter form offers: codebook topics and therapies, the project's imports,
    the annotation statuses."""
    names = service.label_names(await load_codebook(db, access.project))
    return {
        "status_names": {k: translate(request, v) for k, v in STATUS_NAMES.items()},
        "names": names,
        "topics": names.labels.get(TOPIC, []),
        "psychotherapies": names.labels.get(PSYCHOTHERAPY, []),
        "batches": await service.list_batches(db, access.project),
    }


def _links(base: str, filters: DialogueFilters, page: service.DialoguePage) -> dict[str, Any]:
    query = filters.query_params()
    first = base + ("?" + urlencode(query) if query else "")
    following = urlencode({**query, "cursor": page.next_cursor}) if page.next_cursor else None
    return {"first_url": first, "next_url": base + "?" + following if following else None}


@router.get("/projects/{slug}/dialogues")
async def dialogue_list(request: Request, access: DialogueBrowser, db: SessionDep) -> Response:
    """The project's dialogues, filtered and paged by cursor; htmx gets only the results."""
    params = request.query_params
    base = f"/projects/{access.project.slug}/dialogues"
    context: dict[str, Any] = {
        "access": access,
        "values": {name: params.get(name, "") for name in FILTER_FIELDS},
        "errors": {},
        "page": None,
        "first_url": base,
        "next_url": None,
        **await _choices(request, db, access),
    }
    status_code = 200
    try:
        filters = DialogueFilters.model_validate(dict(params.items()))
    except ValidationError as exc:
        context["errors"] = {k: translate(request, v) for k, v in field_errors(exc).items()}
        status_code = 422
    else:
        page = await service.list_dialogues(db, access.project, filters, context["names"])
        context.update(page=page, **_links(base, filters, page))
    block = None if _full_page(request) else "results"
    return render(request, "dialogues/list.html", context, status_code=status_code, block=block)


@router.get("/projects/{slug}/dialogues/{dialogue_id}")
async def dialogue_view(
    request: Request, dialogue_id: DialogueId, access: DialogueBrowser, db: SessionDep
) -> Response:
    """One dialogue of the project, read-only, with every source's annotations."""
    names = service.label_names(await load_codebook(db, access.project))
    view = await service.read_dialogue(db, access.project, dialogue_id, names)
    context = {"access": access, "view": view, "names": names}
    return render(request, "dialogues/view.html", context)


def _item_out(row: service.DialogueRow) -> DialogueItemOut:
    return DialogueItemOut(
        id=row.id,
        external_id=row.external_id,
        language=row.language,
        topic=row.labels(TOPIC),
        psychotherapy=row.labels(PSYCHOTHERAPY),
        turn_count=row.turn_count,
        import_batch=BatchOut(id=row.batch.id, file_name=row.batch.file_name),
        status=row.status,
        submitted=row.submitted,
        skipped=row.skipped,
    )


@api_router.get("/projects/{slug}/dialogues")
async def api_dialogue_list(
    access: DialogueBrowser, db: SessionDep, filters: Annotated[DialogueFilters, Query()]
) -> DialoguePageOut:
    """A page of the project's dialogues; pass `next_cursor` back as `cursor` for the next."""
    names = service.label_names(await load_codebook(db, access.project))
    page = await service.list_dialogues(db, access.project, filters, names)
    return DialoguePageOut(
        items=[_item_out(r) for r in page.rows], next_cursor=page.next_cursor, total=page.total
    )


@api_router.get("/projects/{slug}/dialogues/{dialogue_id}")
async def api_dialogue_detail(
    dialogue_id: DialogueId, access: DialogueBrowser, db: SessionDep
) -> DialogueDetailOut:
    """One dialogue: metadata, turns in order, and every source's annotations (-1 = session)."""
    names = service.label_names(await load_codebook(db, access.project))
    view = await service.read_dialogue(db, access.project, dialogue_id, names)
    d = view.dialogue
    return DialogueDetailOut(
        dialogue=DialogueOut(
            id=d.id,
            external_id=d.external_id,
            language=d.language,
            source_format=d.source_format,
            turn_count=d.turn_count,
            metadata=d.meta,
            session_labels=d.session_labels,
            import_batch=BatchOut(id=view.batch.id, file_name=view.batch.file_name),
            created_at=d.created_at,
        ),
        turns=[
            TurnOut(
                position=t.turn.position,
                speaker=t.turn.speaker,
                participant=t.turn.participant,
                content=t.turn.content,
                original_id=t.turn.original_id,
                flags=list(t.turn.flags),
                extras=t.turn.extras,
            )
            for t in view.turns
        ],
        source_annotations=[
            SourceAnnotationOut(
                source=v.source,
                position=v.position,
                dimension=v.dimension,
                labels=v.labels,
                text=v.text,
            )
            for v in view.values
        ],
    )
