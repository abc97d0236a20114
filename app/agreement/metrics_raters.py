"""Per-rater and per-label views: majority labels, rater-vs-others, pairwise matrices,
confusion matrices and one-vs-rest agreement for multi-label dimensions."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from app.agreement.metrics_alpha import alpha_from_counts, level_metric
from app.agreement.metrics_encode import (
    MISSING,
    RatingMatrix,
    RatingVector,
    SetMatrix,
    encode_matrix,
    encode_sets,
    encode_vectors,
    recode,
    unit_counts,
)
from app.agreement.metrics_kappa import (
    kappa_from_table,
    mean_of_defined,
    mean_pairwise_kappa_codes,
    nominal_weights,
    pair_table,
    percent_from_counts,
)
from app.agreement.metrics_types import (
    NO_MAJORITY,
    NO_SHARED_UNITS,
    NO_SHARED_WITH_OTHERS,
    SELF_PAIR,
    Coefficient,
    ConfusionMatrix,
    LabelAgreement,
    PairStatistic,
    RaterAgreement,
)

TIED = -2  # plurality code: the top categories are tied, so there is no majority label


def majority_labels(data: RatingMatrix, exclude_rater: int | None = None) -> list[Hashable | None]:
    """Per unit, the plurality label (optionally ignoring one rater); None on ties or no rating.

    Plurality, not absolute majority: with ratings a, a, b, c the label is a. When the top
    labels are tied (a, b) there is no majority label and the unit gets None.
    """
    encoded = encode_matrix(data)
    codes = _plurality(_counts_without(encoded.codes, encoded.n_categories, exclude_rater))
    return [encoded.categories[c] if c >= 0 else None for c in codes.tolist()]


def rater_agreement(data: RatingMatrix) -> tuple[RaterAgreement, ...]:
    """Per rater, agreement with the others and their plurality label; parts may be undefined.

    Undefined parts (value None) arise when a rater shares no unit with anyone, or when the
    other raters are tied on every shared unit (tied units are counted, not guessed).
    """
    encoded = encode_matrix(data)
    return tuple(
        _one_rater(encoded.codes, encoded.n_categories, r) for r in range(encoded.codes.shape[0])
    )


def pairwise_matrix(
    data: RatingMatrix, statistic: PairStatistic = "cohen_kappa"
) -> tuple[tuple[Coefficient, ...], ...]:
    """Raters x raters percent agreement or Cohen's kappa; undefined without shared units.

    Entries are undefined when a pair shares no unit (or for kappa, p_e = 1), and on the
    diagonal: a rater compared with themself says nothing about agreement.
    """
    encoded = encode_matrix(data)
    codes, k = encoded.codes, encoded.n_categories
    n = codes.shape[0]
    cells: dict[tuple[int, int], Coefficient] = {}
    for i in range(n):
        cells[i, i] = Coefficient(None, SELF_PAIR, 0, 0, 1, 0)
        for j in range(i + 1, n):
            table = pair_table(codes[i], codes[j], k)
            dropped = int(((codes[i] >= 0) != (codes[j] >= 0)).sum())
            if statistic == "agreement":
                cells[i, j] = cells[j, i] = _agreement_from_table(table, dropped)
            elif statistic == "cohen_kappa":
                cells[i, j] = cells[j, i] = kappa_from_table(table, nominal_weights(k), dropped)
            else:
                raise ValueError(f"unknown pairwise statistic {statistic!r}")
    return tuple(tuple(cells[i, j] for j in range(n)) for i in range(n))


def confusion_matrix(
    a: RatingVector, b: RatingVector, labels: Sequence[Hashable] | None = None
) -> ConfusionMatrix:
    """Confusion counts of rater ``a`` (rows) against ``b`` (columns) on the units both rated.

    ``labels`` fixes the rows/columns (e.g. the dimension's full label set); by default they
    are the labels either rater used, sorted.
    """
    encoded = encode_vectors(a, b)
    if labels is not None:
        encoded = recode(encoded, labels)
    codes, k = encoded.codes, encoded.n_categories
    skipped = int(((codes[0] >= 0) != (codes[1] >= 0)).sum())
    return ConfusionMatrix(encoded.categories, pair_table(codes[0], codes[1], k), skipped)


def majority_confusion_matrix(
    data: RatingMatrix, rater: int, labels: Sequence[Hashable] | None = None
) -> ConfusionMatrix:
    """Confusion counts of one rater (rows) against the other raters' plurality label.

    Units where the others are tied or absent are left out and counted as skipped.
    """
    encoded = encode_matrix(data, labels)
    codes, k = encoded.codes, encoded.n_categories
    majority = _plurality(_counts_without(codes, k, rater))
    own = codes[rater]
    skipped = int(((own >= 0) & (majority < 0)).sum())
    majority = np.where(majority >= 0, majority, MISSING)
    return ConfusionMatrix(encoded.categories, pair_table(own, majority, k), skipped)


def per_label_agreement(
    data: SetMatrix, labels: Sequence[str] | None = None
) -> dict[str, LabelAgreement]:
    """One-vs-rest alpha, kappa and agreement per label ("has label" vs not); may be undefined.

    ``labels`` lists the dimension's labels (a label nobody used then shows as undefined
    alpha/kappa with percent agreement 1.0); by default the labels that occur, sorted.
    """
    encoded = encode_sets(data)
    sets = cast("list[frozenset[str]]", list(encoded.categories))
    if labels is None:
        labels = sorted(set().union(*sets)) if sets else []
    result: dict[str, LabelAgreement] = {}
    for label in labels:
        has_label = np.array([label in s for s in sets] or [False], dtype=np.int64)
        binary = np.where(encoded.codes >= 0, has_label[np.maximum(encoded.codes, 0)], MISSING)
        binary = binary.astype(np.int64, copy=False)
        counts = unit_counts(binary, 2)
        result[label] = LabelAgreement(
            label=label,
            n_positive=int((binary == 1).sum()),
            alpha=alpha_from_counts(counts, level_metric("nominal", [0, 1]), binary),
            mean_kappa=mean_pairwise_kappa_codes(binary, 2),
            percent_agreement=percent_from_counts(counts, binary),
        )
    return result


@dataclass(frozen=True, slots=True)
class _Others:
    """One rater's codes next to the count table of everybody else."""

    own: NDArray[np.int64]
    counts: NDArray[np.int64]
    shared: NDArray[np.bool_]  # units the rater rated and at least one other rater rated
    alone: NDArray[np.bool_]  # units only this rater rated
    n_raters: int  # this rater plus the raters sharing a unit with them

    @property
    def n_alone(self) -> int:
        """Units only this rater rated."""
        return int(self.alone.sum())


def _counts_without(codes: NDArray[np.int64], k: int, rater: int | None) -> NDArray[np.int64]:
    counts = unit_counts(codes, k)
    if rater is not None:
        own = codes[rater]
        rated = np.flatnonzero(own >= 0)
        counts[rated, own[rated]] -= 1
    return counts


def _plurality(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per unit, the most frequent category; MISSING without ratings, TIED when top is shared."""
    if counts.shape[1] == 0:
        return np.full(counts.shape[0], MISSING, dtype=np.int64)
    top = counts.max(axis=1)
    n_top = (counts == top[:, None]).sum(axis=1)
    best = counts.argmax(axis=1)
    return np.where(top == 0, MISSING, np.where(n_top > 1, TIED, best)).astype(np.int64)


def _one_rater(codes: NDArray[np.int64], k: int, rater: int) -> RaterAgreement:
    own = codes[rater]
    counts = _counts_without(codes, k, rater)
    n_others = counts.sum(axis=1)
    shared = (own >= 0) & (n_others >= 1)
    n_raters = int(((codes >= 0) & shared[None, :]).any(axis=1).sum())
    others = _Others(own, counts, shared, (own >= 0) & (n_others == 0), n_raters)
    majority = _plurality(counts)
    has_majority = others.shared & (majority >= 0)
    table = pair_table(np.where(has_majority, own, MISSING), majority, k)
    kappa = kappa_from_table(table, nominal_weights(k), others.n_alone)
    return RaterAgreement(
        rater=rater,
        with_others=_with_others(others),
        with_majority=_match_share(own, majority, has_majority, others),
        kappa_with_majority=kappa if has_majority.any() else _undefined(NO_MAJORITY, others),
        mean_kappa_with_others=_mean_kappa_with_others(codes, k, rater, others),
        n_units_majority_tied=int((others.shared & (majority == TIED)).sum()),
    )


def _with_others(others: _Others) -> Coefficient:
    units = np.flatnonzero(others.shared)
    n_others = others.counts[units].sum(axis=1)
    counts = (len(units), others.n_alone, others.n_raters, len(units) + int(n_others.sum()))
    if len(units) == 0:
        return Coefficient(None, NO_SHARED_WITH_OTHERS, *counts)
    value = float((others.counts[units, others.own[units]] / n_others).mean())
    return Coefficient(value, None, *counts, observed=value)


def _match_share(
    own: NDArray[np.int64], majority: NDArray[np.int64], mask: NDArray[np.bool_], others: _Others
) -> Coefficient:
    n = int(mask.sum())
    if n == 0:
        return _undefined(NO_MAJORITY, others)
    value = float((own[mask] == majority[mask]).mean())
    return Coefficient(value, None, n, others.n_alone, 2, 2 * n, observed=value)


def _mean_kappa_with_others(
    codes: NDArray[np.int64], k: int, rater: int, others: _Others
) -> Coefficient:
    kappas = [
        kappa_from_table(pair_table(codes[rater], codes[s], k), nominal_weights(k), 0)
        for s in range(codes.shape[0])
        if s != rater
    ]
    n = int(others.shared.sum())
    n_ratings = n + int(others.counts[others.shared].sum())
    return mean_of_defined(kappas, (n, others.n_alone, others.n_raters, n_ratings))


def _undefined(reason: str, others: _Others) -> Coefficient:
    return Coefficient(None, reason, 0, others.n_alone, 2, 0)


def _agreement_from_table(table: NDArray[np.int64], dropped: int) -> Coefficient:
    n = int(table.sum())
    if n == 0:
        return Coefficient(None, NO_SHARED_UNITS, 0, dropped, 2, 0)
    value = float(np.trace(table)) / n
    return Coefficient(value, None, n, dropped, 2, 2 * n, observed=value)
