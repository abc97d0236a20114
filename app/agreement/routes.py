"""The agreement dashboard, its drill-downs, downloads and API (leads and reviewers)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from app.agreement import charts
from app.agreement.service import (
    Filters,
    Report,
    drilldown,
    envelope,
    rater_keys,
    rater_names,
    report,
)
from app.codebook import core as codebook
from app.deps import SessionDep, csrf_protect
from app.dialogues.service import label_names
from app.errors import Invalid
from app.i18n import N_
from app.models import AnnotationSource, ImportBatch, Role
from app.projects.deps import RequireProjectRole
from app.projects.service import ProjectAccess
from app.templating import render, translate

router = APIRouter(dependencies=[Depends(csrf_protect)])
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(csrf_protect)], tags=["v1"])
Review = Depends(RequireProjectRole(Role.lead, Role.reviewer))
RaterKey = Annotated[str | None, Query(max_length=80, pattern=r"^(user:\d+|source:\d+|majority)$")]
LabelValue = Annotated[str | None, Query(max_length=200)]


class FilterParams:
    """Query parameters shared by the page, the drill-downs, the downloads and the API."""

    def __init__(
        self,
        dimension: Annotated[str | None, Query(max_length=40)] = None,
        speaker: Literal["client", "counselor", ""] = "",
        topic: Annotated[str | None, Query(max_length=200)] = None,
        batch: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]*$")] = None,
        raters: Literal["people", "all"] = "people",
        source: Annotated[list[str] | None, Query()] = None,
    ) -> None:
        self.dimension = dimension or None
        self.speaker = speaker or None
        self.topic = topic or None
        self.batch = int(batch) if batch else None  # the form sends "" for "all"
        self.raters = raters
        self.source = source or []
        self.known_sources: list[str] = []

    async def filters(self, db: SessionDep, access: ProjectAccess) -> Filters:
        names = set(await db.scalars(
            select(AnnotationSource.name).where(AnnotationSource.project_id == access.project.id)
        ))  # fmt: skip
        self.known_sources = sorted(names)  # the page lists them as rater choices
        unknown = [s for s in self.source if s not in names]
        if unknown:
            raise Invalid(N_("No source named %(name)s in this project."), name=unknown[0])
        sources = tuple(self.source) or (tuple(sorted(names)) if self.raters == "all" else ())
        speaker: Literal["client", "counselor"] | None = (
            "client" if self.speaker == "client" else "counselor" if self.speaker else None
        )
        return Filters(self.dimension, speaker, self.topic, self.batch, sources)

    def query(self, **extra: str) -> str:
        """These filters as a query string; `extra` adds or replaces parameters."""
        from urllib.parse import urlencode

        values: dict[str, Any] = {
            "dimension": self.dimension,
            "speaker": self.speaker,
            "topic": self.topic,
            "batch": self.batch,
            "raters": None if self.raters == "people" else self.raters,
        }
        values.update(extra)
        pairs = [(k, v) for k, v in values.items() if v]
        pairs += [("source", s) for s in self.source]
        return urlencode(pairs)


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
    "masi": N_(
        "Multi-label dimensions compare label sets with the MASI distance (Passonneau 2006): "
        "identical sets agree fully, a subset or an overlap agrees partly, disjoint sets not at "
        "all. Their confusion matrix counts co-assignments: a cell counts the units where the "
        "row rater used the row label and the column rater the column label."
    ),
}


async def _report(
    db: SessionDep, access: ProjectAccess, params: FilterParams
) -> tuple[Report, Filters]:
    filters = await params.filters(db, access)
    return await report(db, access.project, filters), filters


MAJORITY = N_("majority of the others")


async def _names(db: SessionDep, keys: set[str], request: Request | None = None) -> dict[str, str]:
    names = await rater_names(db, keys)
    names["majority"] = translate(request, MAJORITY) if request else MAJORITY
    return names


def _label_namer(cb: codebook.CodebookView, request: Request) -> Callable[[str, str], str]:
    """A label value's name in the page's language: `label_name(dimension, value)`."""
    names = label_names(cb)
    lang = getattr(request.state, "lang", "en")
    return lambda key, value: names.label(key, value, lang)


def _url(access: ProjectAccess, page: str, params: FilterParams, **extra: str) -> str:
    """A page of the agreement views with these filters (`extra` adds or replaces some)."""
    return f"/projects/{access.project.slug}/agreement/{page}?" + params.query(**extra)


@router.get("/projects/{slug}/agreement")
async def dashboard(
    request: Request,
    db: SessionDep,
    params: Params,
    access: ProjectAccess = Review,
    pair: Annotated[str | None, Query(max_length=170)] = None,
) -> Response:
    """Per-dimension agreement with explanations, rater heatmaps and trend; each confusion
    matrix loads on its own when scrolled to (`confusion` below)."""
    found, _ = await _report(db, access, params)
    names = await _names(db, rater_keys(found.dimensions), request)
    views: list[dict[str, Any]] = []
    for row in found.dimensions:
        if "alpha" not in row:
            views.append({"row": row})
            continue
        units_url = _url(access, "units", params, dimension=row["dimension"])
        confusion_url = _url(access, "confusion", params, of=row["dimension"], pair=pair or "")
        views.append({
            "row": row, "units_url": units_url, "heatmap": charts.heatmap(row, names),
            "confusion_url": confusion_url,
            "trend": {k: charts.trend(v) for k, v in row["trend"].items() if v},
        })  # fmt: skip
    cb = await codebook.load(db, access.project)
    batches = list(await db.scalars(
        select(ImportBatch).where(ImportBatch.project_id == access.project.id,
                                  ImportBatch.status == "succeeded").order_by(ImportBatch.id)
    ))  # fmt: skip
    topics = cb.get("topic")
    context = {"access": access, "views": views, "params": params, "sources": params.known_sources,
               "explanations": EXPLANATIONS, "query": params.query(), "report": found,
               "names": names, "batches": batches,
               "label_name": _label_namer(cb, request),
               "dimensions": [d for d in cb.dimensions if d.dimension.kind == "label"],
               "topics": [lb.value for lb in topics.labels] if topics else []}  # fmt: skip
    return render(request, "agreement/dashboard.html", context, block="results")


def _pair(row: dict[str, Any], pair: str | None) -> tuple[str, str]:
    raters = row["raters"]
    a, _, b = (pair or "").partition("|")
    if a not in raters or (b != "majority" and b not in raters) or a == b:
        return raters[0], "majority"
    return a, b


@router.get("/projects/{slug}/agreement/confusion")
async def confusion(
    request: Request,
    db: SessionDep,
    params: Params,
    access: ProjectAccess = Review,
    of: Annotated[str | None, Query(max_length=40)] = None,
    pair: Annotated[str | None, Query(max_length=170)] = None,
) -> Response:
    """One dimension's label x label confusion matrix for two raters, or a rater against the
    others' majority (a fragment for the dashboard, or a page of its own). It reads the figures
    of the dashboard's own filters (the same cached result), dimension `of`."""
    of = of or params.dimension
    if not of:
        raise Invalid(N_("Choose a dimension to see its confusion matrix."))
    found, _ = await _report(db, access, params)
    row = next((r for r in found.dimensions if r["dimension"] == of), None)
    names = await _names(db, rater_keys(found.dimensions), request)
    view: dict[str, Any] | None = None
    if row is not None and "alpha" in row:
        a, b = _pair(row, pair)
        units_url = _url(access, "units", params, dimension=of)
        label_name = _label_namer(await codebook.load(db, access.project), request)
        view = {"row": row, "pair": (a, b), "units_url": units_url,
                "confusion": charts.confusion(row, a, b, names,
                                              lambda value: label_name(of, value))}  # fmt: skip
    again = _url(access, "confusion", params, of=of, pair=pair or "")
    context = {"access": access, "params": params, "view": view, "names": names, "of": of,
               "back": params.query(), "report": found, "again": again}  # fmt: skip
    return render(request, "agreement/confusion.html", context, block="figure")


@router.get("/projects/{slug}/agreement/units")
async def units(
    request: Request,
    db: SessionDep,
    params: Params,
    a: RaterKey = None,
    b: RaterKey = None,
    row: LabelValue = None,
    col: LabelValue = None,
    access: ProjectAccess = Review,
) -> Response:
    """The turns behind a dashboard cell: disagreements, a rater pair's or a confusion cell's."""
    if not params.dimension:
        raise Invalid(N_("Choose a dimension to list its disagreements."))
    if a == "majority" or (b is not None and a is None):
        raise Invalid(N_("The first rater must be a person or a source."))
    filters = await params.filters(db, access)
    total, shown, raters = await drilldown(
        db, access.project, filters, params.dimension, (a, b, row, col)
    )
    names = await _names(db, set(raters), request)
    label_name = _label_namer(await codebook.load(db, access.project), request)
    context = {"access": access, "params": params, "total": total, "units": shown,
               "label_name": lambda value: label_name(params.dimension or "", value),
               "raters": raters, "names": names, "a": a, "b": b, "row": row, "col": col,
               "back": params.query()}  # fmt: skip
    return render(request, "agreement/units.html", context)


@router.get("/projects/{slug}/agreement.json")
async def download_json(db: SessionDep, params: Params, access: ProjectAccess = Review) -> Response:
    """The figures as JSON, with when they were computed."""
    found, filters = await _report(db, access, params)
    names = await rater_names(db, rater_keys(found.dimensions))
    body = json.dumps(envelope(found, filters, names), ensure_ascii=False, indent=2)
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


RATER_COLUMNS = ("dimension", "rater", "name", "n_units", "with_others", "with_majority",
                 "kappa_with_majority")  # fmt: skip


@router.get("/projects/{slug}/agreement.csv")
async def download_csv(
    db: SessionDep,
    params: Params,
    access: ProjectAccess = Review,
    table: Literal["dimensions", "raters", "pairs"] = "dimensions",
) -> Response:
    """A table as CSV: per dimension ("undefined" says why a figure is empty), per rater, or
    per pair of raters."""
    found, _ = await _report(db, access, params)
    out = io.StringIO()
    writer = csv.writer(out)
    rows = [r for r in found.dimensions if table == "dimensions" or "alpha" in r]
    names = await _names(db, rater_keys(rows))
    if table == "dimensions":
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_csv_row(r) for r in rows)
    elif table == "raters":
        writer.writerow(RATER_COLUMNS)
        for r in rows:
            for p in r["per_rater"]:
                writer.writerow([r["dimension"], p["rater"], names.get(p["rater"], ""),
                                 p["n_units"], p["with_others"], p["with_majority"],
                                 p["kappa_with_majority"]])  # fmt: skip
    else:
        writer.writerow(("dimension", "rater_a", "rater_b", "shared_units", "agreement",
                         "cohen_kappa"))  # fmt: skip
        for r in rows:
            raters = r["raters"]
            for i, a in enumerate(raters):
                for j in range(i + 1, len(raters)):
                    writer.writerow([r["dimension"], a, raters[j], r["pairwise_units"][i][j],
                                     r["pairwise_agreement"][i][j],
                                     r["pairwise_cohen_kappa"][i][j]])  # fmt: skip
    suffix = "" if table == "dimensions" else f"-{table}"
    disposition = f'attachment; filename="{access.project.slug}-agreement{suffix}.csv"'
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition})  # fmt: skip


@api_router.get("/projects/{slug}/agreement")
async def api_agreement(
    db: SessionDep, params: Params, access: ProjectAccess = Review
) -> dict[str, Any]:
    """The dashboard's figures (same filters as query parameters), with when they were
    computed; on large projects a stale result is returned while a recomputation runs."""
    found, filters = await _report(db, access, params)
    return envelope(found, filters, await rater_names(db, rater_keys(found.dimensions)))
