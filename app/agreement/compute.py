"""From one dimension's gathered ratings to every figure the dashboard shows (pure, numpy).

The ratings become a (raters, units) matrix of category codes. A category is one label for a
single-label dimension and one distinct label set for a multi-label one (alpha then uses the
MASI distance between sets). ``membership[c, l]`` says whether category c contains label l, so
label x label confusion matrices of either kind are ``membership.T @ pair_table @ membership``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.random  # numpy loads it lazily: here at start-up, not in the first request
from numpy.typing import NDArray

from app.agreement import metrics as m
from app.agreement import metrics_sparse as sparse
from app.agreement.gather import NO_WEEK, POSITION_SPAN, SEP, RawRatings
from app.agreement.metrics_alpha import (
    Metric,
    level_metric,
    set_distance_matrix,
)
from app.agreement.metrics_encode import MISSING
from app.agreement.metrics_kappa import (
    mean_pairwise_kappa_codes,
    pair_table,
)

N_BOOT = 200
MAX_PAIR_CONFUSIONS = 15  # raters; above this only rater-vs-majority matrices are kept
WEEK_ZERO = date(1970, 1, 5)


@dataclass(frozen=True)
class DimensionData:
    """A dimension's ratings as a code matrix, with what each unit, rater and code means."""

    multi_label: bool
    labels: list[str]  # label axis: the codebook's labels in order, then unknown values
    categories: list[frozenset[str]]  # code -> label set
    membership: NDArray[np.int64]  # (categories, labels) 0/1
    codes: NDArray[np.int64]  # (raters, units), MISSING where unrated
    raters: list[str]  # "user:ID" or "source:ID"
    units: NDArray[np.int64]  # unit keys (dialogue * POSITION_SPAN + position + 1), sorted
    unit_batch: NDArray[np.int64]
    unit_week: NDArray[np.int64]

    @property
    def metric(self) -> Metric:
        if self.multi_label:
            return set_distance_matrix(self.categories, "masi")
        return level_metric("nominal", list(range(len(self.categories))))

    def unit(self, index: int) -> tuple[int, int]:
        key = int(self.units[index])
        return key // POSITION_SPAN, key % POSITION_SPAN - 1


def rater_key(rater: int) -> str:
    return f"user:{rater}" if rater > 0 else f"source:{-rater}"


def build(
    raw: RawRatings, labels: Sequence[str], aliases: dict[str, str], multi_label: bool
) -> DimensionData:
    """Pivot the ratings; label strings are mapped once per distinct string, not per rating."""
    units, unit_index = np.unique(raw.unit, return_inverse=True)
    raters, rater_index = np.unique(raw.rater, return_inverse=True)
    # dict.fromkeys and map run in C: ~0.1 s for a million ratings
    distinct = {s: i for i, s in enumerate(dict.fromkeys(raw.labels))}
    string_code = np.fromiter(map(distinct.__getitem__, raw.labels), np.int64, len(raw.labels))
    sets = [frozenset(aliases.get(v, v) for v in s.split(SEP)) for s in distinct]
    axis = list(labels) + sorted({v for s in sets for v in s} - set(labels))
    position = {label: i for i, label in enumerate(axis)}

    def order(s: frozenset[str]) -> tuple[int, list[int]]:
        return (len(s), sorted(position[v] for v in s))

    categories = sorted(set(sets), key=order)
    category_of = {s: i for i, s in enumerate(categories)}
    remap = np.array([category_of[s] for s in sets] or [0], dtype=np.int64)
    codes = np.full((len(raters), len(units)), MISSING, dtype=np.int64)
    codes[rater_index, unit_index] = remap[string_code]
    membership = np.zeros((len(categories), len(axis)), dtype=np.int64)
    for c, s in enumerate(categories):
        membership[c, [position[v] for v in s]] = 1
    unit_batch = np.zeros(len(units), dtype=np.int64)
    unit_batch[unit_index] = raw.batch
    unit_week = np.full(len(units), NO_WEEK, dtype=np.int64)
    np.maximum.at(unit_week, unit_index, raw.week)
    return DimensionData(
        multi_label=multi_label,
        labels=axis,
        categories=categories,
        membership=membership,
        codes=codes,
        raters=[rater_key(int(r)) for r in raters],
        units=units,
        unit_batch=unit_batch,
        unit_week=unit_week,
    )


def coefficient(c: m.Coefficient) -> dict[str, Any]:
    return {"value": c.value, "undefined_reason": c.reason, "n_units": c.n_units,
            "n_units_single_rater": c.n_units_dropped_single_rater, "n_raters": c.n_raters,
            "n_ratings": c.n_ratings}  # fmt: skip


def _nonzero_cells(matrix: NDArray[np.int64]) -> list[list[int]]:
    rows, cols = np.nonzero(matrix)
    return [[int(r), int(c), int(matrix[r, c])] for r, c in zip(rows, cols, strict=True)]


def label_confusion(data: DimensionData, a: NDArray[np.int64], b: NDArray[np.int64]) -> Any:
    """Label x label counts over the units both code rows rated (co-assignment for sets)."""
    table = pair_table(a, b, len(data.categories))
    return data.membership.T @ table @ data.membership


def majority_codes(data: DimensionData, sc: sparse.SparseCounts, rater: int) -> NDArray[np.int64]:
    """Per unit, the plurality category of the raters other than `rater`; MISSING on ties."""
    majority, _, _ = sparse.others_majority(sc, data.codes[rater])
    return np.where(majority >= 0, majority, MISSING)


def _confusions(data: DimensionData, sc: sparse.SparseCounts) -> dict[str, Any]:
    n = len(data.raters)
    majority = {
        data.raters[r]: _nonzero_cells(
            label_confusion(data, data.codes[r], majority_codes(data, sc, r))
        )
        for r in range(n)
    }
    pairs: dict[str, Any] = {}
    if n <= MAX_PAIR_CONFUSIONS:
        for i in range(n):
            for j in range(n):
                if i != j:
                    matrix = label_confusion(data, data.codes[i], data.codes[j])
                    pairs[f"{data.raters[i]}|{data.raters[j]}"] = _nonzero_cells(matrix)
    return {"majority": majority, "pairs": pairs}


def _trend(data: DimensionData, sc: sparse.SparseCounts, metric: Metric) -> dict[str, Any]:
    out: dict[str, Any] = {"batch": [], "week": []}
    pairable = sc.m >= 2
    for kind, groups in (("batch", data.unit_batch), ("week", data.unit_week)):
        for g in np.unique(groups[pairable]):
            if kind == "week" and g == NO_WEEK:
                continue
            mask = pairable & (groups == g)
            alpha = sparse.alpha(sc.subset(mask), metric)
            label: Any = int(g)
            if kind == "week":
                label = (WEEK_ZERO + timedelta(weeks=int(g))).isoformat()
            point = {"group": label, "alpha": alpha.value}
            out[kind].append({**point, "undefined_reason": alpha.reason, "n_units": alpha.n_units})
    return out


def _per_label(data: DimensionData) -> dict[str, Any]:
    found = sparse.per_label_agreement(data.codes, data.membership, data.labels)
    return {
        label: {
            "alpha": coefficient(f.alpha),
            "mean_kappa": coefficient(f.mean_kappa),
            "percent_agreement": coefficient(f.percent_agreement),
            "n_positive": f.n_positive,
        }
        for label, f in found.items()
    }


def figures(data: DimensionData, *, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Every figure of one dimension, JSON-ready."""
    codes, k = data.codes, len(data.categories)
    sc = sparse.SparseCounts.from_codes(codes, k)
    metric = data.metric
    alpha = sparse.alpha(sc, metric, codes)
    ci = sparse.bootstrap_alpha(sc, metric, n_boot, 7, 0.95)
    pairwise_kappa = m.pairwise_matrix(codes, "cohen_kappa")
    pairwise_agreement = m.pairwise_matrix(codes, "agreement")
    per_rater = sparse.rater_agreement(sc, codes)
    result: dict[str, Any] = {
        "raters": data.raters,
        "labels": data.labels,
        "distance": "MASI" if data.multi_label else "nominal",
        "percent_agreement": coefficient(sparse.percent_agreement(sc, codes)),
        "alpha": coefficient(alpha),
        "alpha_ci95": {"low": ci.low, "high": ci.high, "undefined_reason": ci.reason},
        "fleiss_kappa": coefficient(sparse.fleiss_kappa(sc, codes)),
        "mean_pairwise_cohen_kappa": coefficient(mean_pairwise_kappa_codes(codes, k)),
        "pairwise_cohen_kappa": [[c.value for c in row] for row in pairwise_kappa],
        "pairwise_agreement": [[c.value for c in row] for row in pairwise_agreement],
        "pairwise_units": [[c.n_units for c in row] for row in pairwise_agreement],
        "per_rater": [
            {
                "rater": data.raters[r.rater],
                "with_others": r.with_others.value,
                "with_majority": r.with_majority.value,
                "kappa_with_majority": r.kappa_with_majority.value,
                "n_units": r.with_others.n_units,
                "n_units_majority_tied": r.n_units_majority_tied,
            }
            for r in per_rater
        ],
        "confusion": _confusions(data, sc),
        "trend": _trend(data, sc, metric),
    }
    if data.multi_label:
        result["per_label"] = _per_label(data)
    return result


def disagreements(
    data: DimensionData,
    a: str | None = None,
    b: str | None = None,
    row: str | None = None,
    col: str | None = None,
) -> NDArray[np.intp]:
    """Indices of the units behind a dashboard cell, in unit order.

    No raters: every unit whose ratings are not all the same. Rater `a` against rater `b`
    (or "majority", also when `b` is None): units both rated with different values; with
    `row`/`col` labels, the units where `a` used `row` and `b` used `col` (the confusion cell,
    agreeing or not).
    """
    codes = data.codes
    sc = sparse.SparseCounts.from_codes(codes, len(data.categories))
    if a is None:
        top = np.zeros(len(sc.m), dtype=np.int64)
        np.maximum.at(top, sc.unit, sc.count)
        return np.flatnonzero((sc.m >= 2) & (top < sc.m))
    ia = data.raters.index(a)
    own = codes[ia]
    other = majority_codes(data, sc, ia) if b in (None, "majority") else codes[data.raters.index(b)]
    both = (own >= 0) & (other >= 0)
    if row is None or col is None:
        return np.flatnonzero(both & (own != other))
    has_row = data.membership[:, data.labels.index(row)]
    has_col = data.membership[:, data.labels.index(col)]
    hit = both & (has_row[np.maximum(own, 0)] == 1) & (has_col[np.maximum(other, 0)] == 1)
    return np.flatnonzero(hit)
