"""Krippendorff's alpha via the coincidence matrix (Krippendorff 2011), plus bootstrap CIs.

All levels share one computation: the coincidence matrix ``o[c, k]`` of pairable values and
a difference function ``delta[c, k]``; alpha = 1 - (n - 1) * sum(o * delta) / sum(n_c n_k delta).
Only the difference function differs between nominal, ordinal, interval, ratio and the set
distances (MASI, Jaccard) used for multi-label dimensions.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence, Set
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from app.agreement.metrics_encode import (
    RatingMatrix,
    SetMatrix,
    check_counts,
    encode_matrix,
    encode_sets,
    numeric_values,
    unit_counts,
)
from app.agreement.metrics_types import (
    NO_PAIRABLE_UNITS,
    ONE_CATEGORY_ALPHA,
    Coefficient,
    ConfidenceInterval,
    Level,
    SetDistance,
)

FloatArray = NDArray[np.float64]
# A fixed difference matrix, or "ordinal", whose differences depend on the marginals.
Metric = FloatArray | str
_BOOT_CELLS_PER_CHUNK = 4_000_000


def krippendorff_alpha(data: RatingMatrix, level: Level = "nominal") -> Coefficient:
    """Krippendorff's alpha of a rating matrix; undefined if no unit has 2 ratings or if D_e = 0."""
    encoded = encode_matrix(data)
    counts = unit_counts(encoded.codes, encoded.n_categories)
    metric = level_metric(level, encoded.categories)
    return alpha_from_counts(counts, metric, encoded.codes)


def krippendorff_alpha_from_counts(
    counts: NDArray[Any] | Sequence[Sequence[int]],
    level: Level = "nominal",
    values: Sequence[float] | None = None,
) -> Coefficient:
    """Alpha from a (units, categories) count table (columns in scale order); undefined as above.

    ``values`` gives each column's numeric value and is required for interval and ratio.
    """
    table = check_counts(counts)
    if values is None:
        if level in ("interval", "ratio"):
            raise ValueError(f"{level} alpha from counts needs the category values")
        values = list(range(table.shape[1]))
    if len(values) != table.shape[1]:
        raise ValueError("one value per count-table column is needed")
    return alpha_from_counts(table, level_metric(level, list(values)), None)


def krippendorff_alpha_set(data: SetMatrix, distance: SetDistance = "masi") -> Coefficient:
    """Alpha of multi-label ratings with a MASI or Jaccard set distance; undefined as above."""
    encoded = encode_sets(data)
    counts = unit_counts(encoded.codes, encoded.n_categories)
    sets = cast("list[Set[str]]", list(encoded.categories))
    return alpha_from_counts(counts, set_distance_matrix(sets, distance), encoded.codes)


def bootstrap_alpha_ci(
    data: RatingMatrix,
    level: Level = "nominal",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of alpha, resampling pairable units; undefined when alpha is."""
    encoded = encode_matrix(data)
    counts = unit_counts(encoded.codes, encoded.n_categories)
    metric = level_metric(level, encoded.categories)
    return bootstrap_from_counts(counts, metric, n_boot, seed, confidence)


def bootstrap_alpha_set_ci(
    data: SetMatrix,
    distance: SetDistance = "masi",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of set-distance alpha, resampling units; undefined when alpha is."""
    encoded = encode_sets(data)
    counts = unit_counts(encoded.codes, encoded.n_categories)
    metric = set_distance_matrix(cast("list[Set[str]]", list(encoded.categories)), distance)
    return bootstrap_from_counts(counts, metric, n_boot, seed, confidence)


def set_distance_matrix(sets: Sequence[Set[str]], distance: SetDistance) -> FloatArray:
    """Pairwise MASI (Passonneau 2006) or Jaccard distances between label sets.

    MASI = 1 - J * M with Jaccard similarity J and monotonicity M = 1 (equal sets), 2/3 (one a
    subset of the other), 1/3 (overlap), 0 (disjoint); exact thirds, where NLTK rounds to
    0.67/0.33. Two empty sets are identical (distance 0), which NLTK leaves as 0/0.
    """
    labels = sorted(set().union(*sets)) if sets else []
    index = {label: i for i, label in enumerate(labels)}
    member = np.zeros((len(sets), len(labels)))
    for row, labelset in enumerate(sets):
        member[row, [index[label] for label in labelset]] = 1.0
    inter = member @ member.T
    size = member.sum(axis=1)
    size_a, size_b = size[:, None], size[None, :]
    union = size_a + size_b - inter
    jaccard: FloatArray = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    if distance == "jaccard":
        return 1.0 - jaccard
    if distance != "masi":
        raise ValueError(f"unknown set distance {distance!r}")
    equal = (inter == size_a) & (inter == size_b)
    nested = inter == np.minimum(size_a, size_b)
    monotonicity: FloatArray = np.select(
        [equal, nested, inter > 0], [1.0, 2 / 3, 1 / 3], default=0.0
    )
    return 1.0 - jaccard * monotonicity


def level_metric(level: Level, categories: Sequence[Hashable]) -> Metric:
    """The difference function for a level of measurement over the sorted categories."""
    k = len(categories)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "ordinal":
        return "ordinal"
    values = numeric_values(categories)
    diff = values[:, None] - values[None, :]
    if level == "interval":
        return diff**2
    if level == "ratio":
        if (values < 0).any():
            raise ValueError("ratio alpha needs non-negative values")
        total = values[:, None] + values[None, :]
        # Two zeros are identical (0/0 is taken as no difference).
        ratio = np.divide(diff, total, out=np.zeros_like(diff), where=total > 0)
        return ratio**2
    raise ValueError(f"unknown level of measurement {level!r}")


def ordinal_delta(marginals: FloatArray) -> FloatArray:
    """Ordinal differences from marginals (..., K): (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2."""
    # Cumulative count up to the middle of each category; differences of midpoints give
    # exactly the bracketed sum, so the whole matrix comes from one cumsum.
    mid = np.cumsum(marginals, axis=-1) - marginals / 2
    return (mid[..., :, None] - mid[..., None, :]) ** 2


def coincidences(counts: FloatArray, raters_per_unit: FloatArray) -> FloatArray:
    """Coincidence matrix o[c, k] = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1)."""
    weighted = counts / (raters_per_unit - 1)[:, None]
    return weighted.T @ counts - np.diag(weighted.sum(axis=0))


def alpha_from_counts(
    counts: NDArray[np.int64], metric: Metric, codes: NDArray[np.int64] | None
) -> Coefficient:
    """Alpha from a (units, categories) table; ``codes`` (if known) only serve the rater count."""
    m = counts.sum(axis=1)
    keep = m >= 2
    dropped = int((m == 1).sum())
    n_raters = None if codes is None else int(((codes >= 0) & keep[None, :]).any(axis=1).sum())
    used, m_used = counts[keep].astype(np.float64), m[keep].astype(np.float64)
    n_units, n_ratings = int(keep.sum()), int(m_used.sum())
    if n_units == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, 0, dropped, n_raters, 0)
    coinc = coincidences(used, m_used)
    return alpha_from_coincidences(coinc, metric, (n_units, dropped, n_raters, n_ratings))


def alpha_from_coincidences(
    coinc: FloatArray, metric: Metric, tally: tuple[int, int, int | None, int]
) -> Coefficient:
    """alpha = 1 - D_o / D_e from a coincidence matrix; ``tally`` = (units, units with one
    rating, raters, ratings) it rests on. Undefined when D_e = 0."""
    marginals = coinc.sum(axis=1)
    delta = ordinal_delta(marginals) if isinstance(metric, str) else metric
    n = float(marginals.sum())
    d_observed = float((coinc * delta).sum()) / n
    d_expected = float(marginals @ delta @ marginals) / (n * (n - 1))
    if d_expected <= 0:
        return Coefficient(None, ONE_CATEGORY_ALPHA, *tally)
    value = 1.0 - d_observed / d_expected
    return Coefficient(value, None, *tally, d_observed, d_expected)


def bootstrap_from_counts(
    counts: NDArray[np.int64], metric: Metric, n_boot: int, seed: int, confidence: float
) -> ConfidenceInterval:
    """Percentile bootstrap of alpha over the pairable units of a count table."""
    if n_boot < 1 or not 0 < confidence < 1:
        raise ValueError("need n_boot >= 1 and 0 < confidence < 1")
    point = alpha_from_counts(counts, metric, None)
    if point.value is None:
        return ConfidenceInterval(None, None, point.reason, confidence, n_boot, n_boot, seed)
    used = counts[counts.sum(axis=1) >= 2]
    patterns, frequency = _unit_patterns(used)
    rng = np.random.default_rng(seed)
    resampled = [
        _alpha_of_resamples(patterns, weights, metric)
        for weights in multinomial_chunks(rng, frequency, n_boot)
    ]
    return percentile_interval(np.concatenate(resampled), confidence, seed)


def percentile_interval(alphas: FloatArray, confidence: float, seed: int) -> ConfidenceInterval:
    """The percentile interval of the resamples' alphas (NaN: undefined, counted, left out)."""
    n_boot = alphas.size
    defined = alphas[~np.isnan(alphas)]
    n_undefined = n_boot - defined.size
    if defined.size == 0:
        reason = "every bootstrap resample has an undefined alpha"
        return ConfidenceInterval(None, None, reason, confidence, n_boot, n_undefined, seed)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return ConfidenceInterval(float(low), float(high), None, confidence, n_boot, n_undefined, seed)


def _unit_patterns(used: NDArray[np.int64]) -> tuple[FloatArray, NDArray[np.int64]]:
    """Distinct per-unit count vectors and how many units share each.

    Resampling n units with replacement only matters through how often each distinct count
    vector is drawn, which is multinomial in their frequencies: with a rating scale there are
    a few dozen patterns instead of 300,000 units, so resamples cost almost nothing.
    """
    base = int(used.max()) + 1
    if base ** used.shape[1] < 2**62:
        keys = used @ (base ** np.arange(used.shape[1], dtype=np.int64))
        _, first, frequency = np.unique(keys, return_index=True, return_counts=True)
        return used[first].astype(np.float64), frequency.astype(np.int64)
    patterns, frequency = np.unique(used, axis=0, return_counts=True)
    return patterns.astype(np.float64), frequency.astype(np.int64)


def multinomial_chunks(
    rng: np.random.Generator, frequency: NDArray[np.int64], n_boot: int
) -> Iterator[NDArray[np.int64]]:
    """Resample weights (boots, patterns), in chunks small enough to keep memory bounded."""
    n_units = int(frequency.sum())
    chunk = max(1, _BOOT_CELLS_PER_CHUNK // frequency.size)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        yield rng.multinomial(n_units, frequency / n_units, size=size).astype(np.int64)


def _alpha_of_resamples(
    patterns: FloatArray, weights: NDArray[np.int64], metric: Metric
) -> FloatArray:
    """Alpha of each resample (rows of ``weights``); NaN marks an undefined resample."""
    w = weights.astype(np.float64)
    m = patterns.sum(axis=1)
    marginals = w @ patterns
    n = marginals.sum(axis=1)
    if isinstance(metric, str):
        # Ordinal differences depend on each resample's marginals: pool coincidences first.
        k = patterns.shape[1]
        per_unit = patterns[:, :, None] * patterns[:, None, :] - _diag_stack(patterns)
        coinc = (w @ (per_unit / (m - 1)[:, None, None]).reshape(len(m), k * k)).reshape(-1, k, k)
        delta = ordinal_delta(marginals)
        observed = (coinc * delta).sum(axis=(1, 2))
        expected = np.einsum("bk,bkl,bl->b", marginals, delta, marginals)
    else:
        # delta[c, c] = 0, so a unit's disagreement is n_u' delta n_u / (m_u - 1).
        per_unit = ((patterns @ metric) * patterns).sum(axis=1) / (m - 1)
        observed = w @ per_unit
        expected = ((marginals @ metric) * marginals).sum(axis=1)
    alpha = np.full(len(w), np.nan)
    ok = expected > 0
    alpha[ok] = 1.0 - (n[ok] - 1) * observed[ok] / expected[ok]
    return alpha


def _diag_stack(patterns: FloatArray) -> FloatArray:
    k = patterns.shape[1]
    return patterns[:, :, None] * np.eye(k)[None, :, :]
