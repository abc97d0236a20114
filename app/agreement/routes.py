"""The agreement dashboard, its downloads and its API (leads and reviewers)."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from app.agreement.service import Filters, agreement, as_json
from app.deps import SessionDep, csrf_protect
from app.i18n import N_
from app.models import AnnotationSource, Role
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess
from app.templating import render

router = APIRouter(dependencies=[Depends(csrf_protect)])
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(csrf_protect)], tags=["v1"])
Review = Depends(RequireProjectRole(Role.lead, Role.reviewer))


class FilterParams:
    """Query parameters shared by the page, the downloads and the API."""

    def __init__(
        self,
        dimension: Annotated[str | None, Query(max_length=40)] = None,
        speaker: Literal["client", "counselor", ""] = "",
        topic: Annotated[str | None, Query(max_length=200)] = None,
        batch: int | None = None,
        raters: Literal["people", "all"] = "people",
        source: Annotated[list[str] | None, Query()] = None,
    ) -> None:
        self.dimension = dimension or None
        self.speaker = speaker or None
        self.topic = topic or None
        self.batch = batch
        self.raters = raters
        self.source = source or []

    async def filters(self, db: SessionDep, access: ProjectAccess) -> Filters:
        sources = tuple(self.source)
        if self.raters == "all" and not sources:
            names = await db.scalars(
                select(AnnotationSource.name).where(
                    AnnotationSource.project_id == access.project.id
                )
            )
            sources = tuple(names)
        speaker: Literal["client", "counselor"] | None = (
            "client" if self.speaker == "client" else "counselor" if self.speaker else None
        )
        return Filters(self.dimension, speaker, self.topic, self.batch, sources)


Params = Annotated[FilterParams, Depends()]

EXPLANATIONS = {
    "percent_agreement": N_(
        "Share of rater pairs on a unit that chose the same value; it ignores chance."
    ),
    "alpha": N_(
        "Krippendorff's alpha: 1 is perfect, 0 is chance level. Usual reading: at least 0.800 "
        "reliable, 0.667 to 0.800 tentative, below 0.667 not reliable."
    ),
    "fleiss_kappa": N_(
        "Fleiss' kappa: chance-corrected agreement, defined only when every unit has the same "
        "number of raters. Landis and Koch: 0.41 to 0.60 moderate, 0.61 to 0.80 substantial."
    ),
    "mean_pairwise_cohen_kappa": N_(
        "Cohen's kappa for each pair of raters on the units they share, averaged (Light's kappa)."
    ),
}


async def _compute(db: SessionDep, access: ProjectAccess, params: FilterParams) -> list[Any]:
    return as_json(await agreement(db, access.project, await params.filters(db, access)))


@router.get("/projects/{slug}/agreement")
async def dashboard(
    request: Request, db: SessionDep, params: Params, access: ProjectAccess = Review
) -> Response:
    """Per-dimension agreement with explanations, rater matrices and filters."""
    rows = await _compute(db, access, params)
    sources = list(await db.scalars(
        select(AnnotationSource.name).where(AnnotationSource.project_id == access.project.id)
    ))  # fmt: skip
    context = {"access": access, "rows": rows, "params": params, "sources": sources,
               "explanations": EXPLANATIONS, "query": request.url.query}  # fmt: skip
    return render(request, "agreement/dashboard.html", context, block="results")


@router.get("/projects/{slug}/agreement.json")
async def download_json(db: SessionDep, params: Params, access: ProjectAccess = Review) -> Response:
    """The figures as JSON."""
    body = json.dumps(await _compute(db, access, params), ensure_ascii=False, indent=2)
    disposition = f'attachment; filename="{access.project.slug}-agreement.json"'
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": disposition})  # fmt: skip


CSV_COLUMNS = ("dimension", "distance", "n_units", "n_units_single_rater", "n_raters",
               "n_ratings", "percent_agreement", "alpha", "alpha_ci95_low", "alpha_ci95_high",
               "fleiss_kappa", "mean_pairwise_cohen_kappa", "undefined")  # fmt: skip


def _csv_row(row: dict[str, Any]) -> list[Any]:
    if "alpha" not in row:
        return [row["dimension"], "", 0, 0, 0, 0, "", "", "", "", "", "", "no ratings"]
    a = row["alpha"]
    reasons = [
        row[k]["undefined_reason"] for k in ("alpha", "fleiss_kappa") if row[k]["undefined_reason"]
    ]
    return [row["dimension"], row["distance"], a["n_units"], a["n_units_single_rater"],
            a["n_raters"], a["n_ratings"], row["percent_agreement"]["value"], a["value"],
            row["alpha_ci95"]["low"], row["alpha_ci95"]["high"], row["fleiss_kappa"]["value"],
            row["mean_pairwise_cohen_kappa"]["value"], "; ".join(reasons)]  # fmt: skip


@router.get("/projects/{slug}/agreement.csv")
async def download_csv(db: SessionDep, params: Params, access: ProjectAccess = Review) -> Response:
    """The per-dimension table as CSV ("undefined" says why a figure is empty)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in await _compute(db, access, params):
        writer.writerow(_csv_row(row))
    disposition = f'attachment; filename="{access.project.slug}-agreement.csv"'
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition})  # fmt: skip


@api_router.get("/projects/{slug}/agreement")
async def api_agreement(
    db: SessionDep, params: Params, access: ProjectAccess = Review
) -> list[dict[str, Any]]:
    """The dashboard's figures (same filters as query parameters)."""
    return await _compute(db, access, params)
