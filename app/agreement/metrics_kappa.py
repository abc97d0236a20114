"""Kappa-family coefficients (Cohen, weighted Cohen, Fleiss) and percent agreement."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.agreement.metrics_encode import (
    RatingMatrix,
    RatingVector,
    check_counts,
    encode_matrix,
    encode_vectors,
    numeric_values,
    unit_counts,
)
from app.agreement.metrics_types import (
    NO_DEFINED_PAIR,
    NO_PAIRABLE_UNITS,
    NO_SHARED_UNITS,
    ONE_CATEGORY_KAPPA,
    UNEQUAL_RATERS,
    Coefficient,
    KappaWeights,
)

FloatArray = NDArray[np.float64]


def cohen_kappa(a: RatingVector, b: RatingVector) -> Coefficient:
    """Cohen's kappa of two raters on the units both rated; undefined if none or p_e = 1."""
    encoded = encode_vectors(a, b)
    table = pair_table(encoded.codes[0], encoded.codes[1], encoded.n_categories)
    dropped = _rated_by_one(encoded.codes[0], encoded.codes[1])
    return kappa_from_table(table, nominal_weights(encoded.n_categories), dropped)


def weighted_cohen_kappa(
    a: RatingVector,
    b: RatingVector,
    weights: KappaWeights = "linear",
    levels: Sequence[float] | None = None,
) -> Coefficient:
    """Weighted Cohen's kappa on a numeric scale; undefined if no shared unit or p_e = 1.

    Weights use each value's position in ``levels`` (the full scale, in order). Without
    ``levels`` the positions are those among the values actually used on the shared units,
    as R irr's kappa2 and scikit-learn do: an unused scale point then shrinks the distance.
    """
    encoded = encode_vectors(a, b)
    values = numeric_values(encoded.categories)
    table = pair_table(encoded.codes[0], encoded.codes[1], encoded.n_categories)
    dropped = _rated_by_one(encoded.codes[0], encoded.codes[1])
    if levels is None:
        used = (table.sum(axis=0) + table.sum(axis=1)) > 0
        table = table[np.ix_(used, used)]
        positions, n_levels = np.arange(int(used.sum())), int(used.sum())
    else:
        positions, n_levels = _positions_on_scale(values, levels), len(levels)
    return kappa_from_table(table, scale_weights(positions, n_levels, weights), dropped)


def cohen_kappa_from_confusion(
    table: NDArray[Any] | Sequence[Sequence[int]], weights: KappaWeights | None = None
) -> Coefficient:
    """Cohen's (weighted) kappa of a square confusion table; undefined if empty or p_e = 1."""
    counts = check_counts(table)
    k = counts.shape[0]
    if counts.shape != (k, k):
        raise ValueError("a confusion table must be square")
    w = nominal_weights(k) if weights is None else scale_weights(np.arange(k), k, weights)
    return kappa_from_table(counts, w, 0)


def fleiss_kappa(data: RatingMatrix) -> Coefficient:
    """Fleiss' kappa; undefined if raters per unit vary (single-rater units aside) or p_e = 1."""
    encoded = encode_matrix(data)
    return fleiss_from_counts(unit_counts(encoded.codes, encoded.n_categories), encoded.codes)


def fleiss_kappa_from_counts(counts: NDArray[Any] | Sequence[Sequence[int]]) -> Coefficient:
    """Fleiss' kappa of a (units, categories) count table; undefined as for ``fleiss_kappa``."""
    return fleiss_from_counts(check_counts(counts), None)


def percent_agreement(data: RatingMatrix) -> Coefficient:
    """Mean share of agreeing rater pairs per unit with >= 2 ratings; undefined if none has.

    Each unit weighs the same (Fleiss's P-bar); all ratings in one category give 1.0.
    """
    encoded = encode_matrix(data)
    return percent_from_counts(unit_counts(encoded.codes, encoded.n_categories), encoded.codes)


def unit_agreement(counts: NDArray[Any] | Sequence[Sequence[int]]) -> list[float | None]:
    """Per unit of a count table, the share of agreeing rater pairs; None below two ratings."""
    table = check_counts(counts)
    m = table.sum(axis=1)
    pairs = (table * (table - 1)).sum(axis=1)
    pairs_and_sizes = zip(pairs.tolist(), m.tolist(), strict=True)
    return [None if mu < 2 else p / (mu * (mu - 1)) for p, mu in pairs_and_sizes]


def mean_pairwise_cohen_kappa(data: RatingMatrix) -> Coefficient:
    """Light's kappa: mean Cohen's kappa over rater pairs; undefined if no pair has one."""
    encoded = encode_matrix(data)
    return mean_pairwise_kappa_codes(encoded.codes, encoded.n_categories)


def mean_pairwise_kappa_codes(codes: NDArray[np.int64], k: int) -> Coefficient:
    """Mean pairwise Cohen's kappa of a code matrix; pairs without a defined kappa are skipped."""
    m = (codes >= 0).sum(axis=0)
    keep = m >= 2
    n_raters = int(((codes >= 0) & keep[None, :]).any(axis=1).sum())
    counts = (int(keep.sum()), int((m == 1).sum()), n_raters, int(m[keep].sum()))
    kappas = [
        kappa_from_table(pair_table(codes[i], codes[j], k), nominal_weights(k), 0)
        for i, j in itertools.combinations(range(codes.shape[0]), 2)
    ]
    if counts[0] == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, *counts)
    return mean_of_defined(kappas, counts)


def mean_of_defined(
    pairs: Sequence[Coefficient], counts: tuple[int, int, int | None, int]
) -> Coefficient:
    """Mean of the defined pair coefficients; undefined, with the pairs' reasons, if none is."""
    defined = [c.value for c in pairs if c.value is not None]
    if not defined:
        reasons = "; ".join(sorted({c.reason for c in pairs if c.reason})) or "no pairs"
        return Coefficient(None, f"{NO_DEFINED_PAIR} ({reasons})", *counts)
    return Coefficient(float(np.mean(defined)), None, *counts)


def pair_table(a: NDArray[np.int64], b: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """Confusion table (k, k) of two code vectors over the units both rated."""
    both = (a >= 0) & (b >= 0)
    flat = np.bincount(a[both] * k + b[both], minlength=k * k)
    return flat.reshape(k, k).astype(np.int64, copy=False)


def nominal_weights(k: int) -> FloatArray:
    """Disagreement weights of unweighted kappa: 0 on the diagonal, 1 elsewhere."""
    return 1.0 - np.eye(k)


def scale_weights(positions: NDArray[np.int64], n_levels: int, kind: KappaWeights) -> FloatArray:
    """Disagreement weights |i - j| / (L - 1), linear or squared, from scale positions."""
    diff: FloatArray = np.abs(positions[:, None] - positions[None, :]) / max(n_levels - 1, 1)
    if kind == "linear":
        return diff
    if kind == "quadratic":
        return np.square(diff)
    raise ValueError(f"unknown kappa weights {kind!r}")


def kappa_from_table(table: NDArray[np.int64], weights: FloatArray, dropped: int) -> Coefficient:
    """Kappa = 1 - sum(w p_obs) / sum(w p_exp) of a confusion table and disagreement weights."""
    n = int(table.sum())
    if n == 0:
        return Coefficient(None, NO_SHARED_UNITS, 0, dropped, 2, 0)
    p = table / n
    d_observed = float((weights * p).sum())
    d_expected = float((weights * np.outer(p.sum(axis=1), p.sum(axis=0))).sum())
    if d_expected <= 0:
        return Coefficient(None, ONE_CATEGORY_KAPPA, n, dropped, 2, 2 * n)
    value = 1.0 - d_observed / d_expected
    # Reported as agreements, so that value = (observed - expected) / (1 - expected).
    return Coefficient(value, None, n, dropped, 2, 2 * n, 1.0 - d_observed, 1.0 - d_expected)


def fleiss_from_counts(counts: NDArray[np.int64], codes: NDArray[np.int64] | None) -> Coefficient:
    """Fleiss' kappa of a count table; ``codes`` (if known) only serve the rater count."""
    m = counts.sum(axis=1)
    keep = m >= 2
    used, m_used = counts[keep], m[keep]
    n_raters = None if codes is None else int(((codes >= 0) & keep[None, :]).any(axis=1).sum())
    tally = (int(keep.sum()), int((m == 1).sum()), n_raters, int(m_used.sum()))
    if tally[0] == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, *tally)
    if m_used.min() != m_used.max():
        spread = f"{m_used.min()} to {m_used.max()} per unit"
        return Coefficient(None, UNEQUAL_RATERS.format(spread), *tally)
    r = float(m_used[0])
    p_observed = float(((used * (used - 1)).sum(axis=1) / (r * (r - 1))).mean())
    shares = used.sum(axis=0) / used.sum()
    p_expected = float((shares**2).sum())
    if 1.0 - p_expected <= 0:
        return Coefficient(None, ONE_CATEGORY_KAPPA, *tally)
    value = (p_observed - p_expected) / (1.0 - p_expected)
    return Coefficient(value, None, *tally, p_observed, p_expected)


def percent_from_counts(counts: NDArray[np.int64], codes: NDArray[np.int64] | None) -> Coefficient:
    """Mean per-unit pairwise agreement of a count table over units with >= 2 ratings."""
    m = counts.sum(axis=1)
    keep = m >= 2
    n_raters = None if codes is None else int(((codes >= 0) & keep[None, :]).any(axis=1).sum())
    tally = (int(keep.sum()), int((m == 1).sum()), n_raters, int(m[keep].sum()))
    if tally[0] == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, *tally)
    used, m_used = counts[keep], m[keep]
    per_unit = (used * (used - 1)).sum(axis=1) / (m_used * (m_used - 1))
    value = float(per_unit.mean())
    return Coefficient(value, None, *tally, observed=value)


def _rated_by_one(a: NDArray[np.int64], b: NDArray[np.int64]) -> int:
    return int(((a >= 0) != (b >= 0)).sum())


def _positions_on_scale(values: FloatArray, levels: Sequence[float]) -> NDArray[np.int64]:
    scale = np.asarray(levels, dtype=np.float64)
    if scale.ndim != 1 or (np.diff(scale) <= 0).any():
        raise ValueError("levels must be a strictly increasing sequence of numbers")
    positions = np.clip(np.searchsorted(scale, values), 0, max(len(scale) - 1, 0))
    if len(scale) == 0 or not np.array_equal(scale[positions], values):
        raise ValueError("every rating must be one of the given levels")
    return positions.astype(np.int64)
