"""The same coefficients from a sparse count table, for many units and many categories.

The dense (units x categories) table of ``metrics_encode.unit_counts`` is the clearest way to
write the formulas, but a multi-label dimension has one category per distinct label set: 150,000
turns x 465 sets is 70 million cells, mostly zero. Here a table is its non-zero cells only
(unit, category, count), sorted by unit then category, and every figure is computed from them:
alpha from the coincidences of value pairs within units, percent agreement and Fleiss' kappa
from per-unit sums, bootstrap resamples over distinct unit patterns, and each rater against the
others' counts. Tests check every function against its dense counterpart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.agreement.metrics_alpha import (
    Metric,
    alpha_from_coincidences,
    bootstrap_from_counts,
    multinomial_chunks,
    percentile_interval,
)
from app.agreement.metrics_kappa import kappa_from_table, mean_of_defined, nominal_weights
from app.agreement.metrics_kappa import pair_table as _pair_table
from app.agreement.metrics_types import (
    NO_MAJORITY,
    NO_PAIRABLE_UNITS,
    NO_SHARED_WITH_OTHERS,
    ONE_CATEGORY_ALPHA,
    ONE_CATEGORY_KAPPA,
    UNEQUAL_RATERS,
    Coefficient,
    ConfidenceInterval,
    LabelAgreement,
    RaterAgreement,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
MISSING = -1
DENSE_MAX_CATEGORIES = 30  # up to here the dense bootstrap's pattern keys fit in an int64


@dataclass(frozen=True)
class SparseCounts:
    """Non-zero cells of a (units, categories) count table, sorted by (unit, category)."""

    unit: IntArray
    category: IntArray
    count: IntArray
    m: IntArray  # ratings per unit (all units, zeros included)
    k: int

    @classmethod
    def from_codes(cls, codes: IntArray, k: int) -> SparseCounts:
        n_units = codes.shape[1]
        rater, unit = np.nonzero(codes >= 0)
        keys = unit.astype(np.int64) * k + codes[rater, unit]
        cells, count = np.unique(keys, return_counts=True)
        m = np.bincount(unit, minlength=n_units).astype(np.int64)
        return cls(cells // k, cells % k, count.astype(np.int64), m, k)

    def subset(self, units: NDArray[np.bool_]) -> SparseCounts:
        keep = units[self.unit]
        return SparseCounts(self.unit[keep], self.category[keep], self.count[keep],
                            np.where(units, self.m, 0), self.k)  # fmt: skip

    def dense(self) -> IntArray:
        table = np.zeros((len(self.m), self.k), dtype=np.int64)
        table[self.unit, self.category] = self.count
        return table


def _pairable(sc: SparseCounts) -> tuple[NDArray[np.bool_], int, int]:
    keep = sc.m >= 2
    return keep, int(keep.sum()), int((sc.m == 1).sum())


def _n_raters(codes: IntArray | None, keep: NDArray[np.bool_]) -> int | None:
    return None if codes is None else int(((codes >= 0) & keep[None, :]).any(axis=1).sum())


def coincidences(sc: SparseCounts) -> FloatArray:
    """o[c, k] = sum over pairable units of (n_uc n_uk - [c = k] n_uc) / (m_u - 1)."""
    k = sc.k
    keep = sc.m[sc.unit] >= 2
    unit, cat, n = sc.unit[keep], sc.category[keep], sc.count[keep].astype(np.float64)
    scale = 1.0 / (sc.m[unit] - 1)
    flat = np.bincount(cat * (k + 1), weights=n * (n - 1) * scale, minlength=k * k)
    for i, j in same_unit_pairs(unit):
        w = n[i] * n[j] * scale[i]
        flat += np.bincount(cat[i] * k + cat[j], weights=w, minlength=k * k)
        flat += np.bincount(cat[j] * k + cat[i], weights=w, minlength=k * k)
    return flat.reshape(k, k).astype(np.float64, copy=False)


def same_unit_pairs(unit: IntArray) -> Iterator[tuple[IntArray, IntArray]]:
    """Index arrays (i, j), i < j, of every two cells of one unit (cells sorted by unit): the
    cells `lag` apart, for lag = 1, 2, ... until no unit has that many cells."""
    lag = 1
    while lag < len(unit):
        i = np.flatnonzero(unit[lag:] == unit[:-lag])
        if not i.size:
            return
        yield i, i + lag
        lag += 1


def alpha(sc: SparseCounts, metric: Metric, codes: IntArray | None = None) -> Coefficient:
    """Krippendorff's alpha, as ``metrics_alpha.alpha_from_counts`` of the dense table."""
    keep, n_units, dropped = _pairable(sc)
    n_raters = _n_raters(codes, keep)
    if n_units == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, 0, dropped, n_raters, 0)
    n_ratings = int(sc.m[keep].sum())
    return alpha_from_coincidences(
        coincidences(sc), metric, (n_units, dropped, n_raters, n_ratings)
    )


def _per_unit_agreement(sc: SparseCounts) -> tuple[NDArray[np.bool_], FloatArray]:
    keep = sc.m >= 2
    same = np.bincount(sc.unit, weights=(sc.count * (sc.count - 1)).astype(np.float64),
                       minlength=len(sc.m))  # fmt: skip
    m = sc.m[keep].astype(np.float64)
    return keep, same[keep] / (m * (m - 1))


def percent_agreement(sc: SparseCounts, codes: IntArray | None = None) -> Coefficient:
    """Mean share of agreeing rater pairs per pairable unit (``percent_from_counts``)."""
    keep, n_units, dropped = _pairable(sc)
    tally = (n_units, dropped, _n_raters(codes, keep), int(sc.m[keep].sum()))
    if n_units == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, *tally)
    _, per_unit = _per_unit_agreement(sc)
    value = float(per_unit.mean())
    return Coefficient(value, None, *tally, observed=value)


def fleiss_kappa(sc: SparseCounts, codes: IntArray | None = None) -> Coefficient:
    """Fleiss' kappa (``fleiss_from_counts``); undefined when raters per unit vary."""
    keep, n_units, dropped = _pairable(sc)
    m_used = sc.m[keep]
    tally = (n_units, dropped, _n_raters(codes, keep), int(m_used.sum()))
    if n_units == 0:
        return Coefficient(None, NO_PAIRABLE_UNITS, *tally)
    if m_used.min() != m_used.max():
        spread = f"{m_used.min()} to {m_used.max()} per unit"
        return Coefficient(None, UNEQUAL_RATERS.format(spread), *tally)
    _, per_unit = _per_unit_agreement(sc)
    p_observed = float(per_unit.mean())
    cells = keep[sc.unit]
    totals = np.bincount(sc.category[cells], weights=sc.count[cells].astype(np.float64),
                         minlength=sc.k)  # fmt: skip
    shares = totals / totals.sum()
    p_expected = float((shares**2).sum())
    if 1.0 - p_expected <= 0:
        return Coefficient(None, ONE_CATEGORY_KAPPA, *tally)
    value = (p_observed - p_expected) / (1.0 - p_expected)
    return Coefficient(value, None, *tally, p_observed, p_expected)


def _patterns(sc: SparseCounts) -> tuple[IntArray, IntArray, IntArray]:
    """Per pairable unit, the id of its distinct (category, count) pattern; and per pattern
    one representative unit and how many units share it."""
    keep = sc.m[sc.unit] >= 2
    unit, cat, n = sc.unit[keep], sc.category[keep], sc.count[keep]
    units, start, width = np.unique(unit, return_index=True, return_counts=True)
    signature = np.full((len(units), int(width.max()) if len(units) else 0), -1, dtype=np.int64)
    rank = np.arange(len(unit)) - np.repeat(start, width)
    signature[np.repeat(np.arange(len(units)), width), rank] = cat * (int(n.max()) + 1) + n
    _, first, inverse, frequency = np.unique(
        signature, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    return units[first], inverse.reshape(-1), frequency.astype(np.int64)


@dataclass(frozen=True)
class UnitPatterns:
    """Distinct pairable units of a table: resampling units only changes how often each is
    drawn, so a resample is a weight per pattern."""

    representatives: IntArray  # one unit per pattern
    frequency: IntArray  # units per pattern
    cells: SparseCounts  # the representatives' cells
    cell_pattern: IntArray  # the pattern of each of those cells
    disagreement: FloatArray  # per pattern: n' delta n / (m - 1)

    @classmethod
    def of(cls, sc: SparseCounts, metric: FloatArray) -> UnitPatterns:
        representatives, _, frequency = _patterns(sc)
        chosen = np.zeros(len(sc.m), dtype=np.bool_)
        chosen[representatives] = True
        rep = sc.subset(chosen)
        pattern_of_unit = np.full(len(sc.m), -1, dtype=np.int64)
        pattern_of_unit[representatives] = np.arange(len(representatives))
        cell_pattern = pattern_of_unit[rep.unit]
        weight = rep.count.astype(np.float64)
        disagreement = np.zeros(len(representatives))
        for i, j in same_unit_pairs(rep.unit):  # delta's diagonal is 0: different cells only
            d = 2 * metric[rep.category[i], rep.category[j]] * weight[i] * weight[j]
            disagreement += np.bincount(cell_pattern[i], weights=d, minlength=len(representatives))
        disagreement /= rep.m[representatives] - 1
        return cls(representatives, frequency, rep, cell_pattern, disagreement)

    def alphas(self, weights: IntArray, metric: FloatArray) -> FloatArray:
        """Alpha of each resample (a row of pattern weights); NaN where undefined."""
        w = weights.astype(np.float64)
        cell_weight = self.cells.count.astype(np.float64)
        marginals = np.stack([
            np.bincount(self.cells.category, weights=row[self.cell_pattern] * cell_weight,
                        minlength=self.cells.k)
            for row in w
        ])  # fmt: skip
        n = marginals.sum(axis=1)
        observed = w @ self.disagreement
        expected = ((marginals @ metric) * marginals).sum(axis=1)
        result = np.full(len(w), np.nan)
        ok = expected > 0
        result[ok] = 1.0 - (n[ok] - 1) * observed[ok] / expected[ok]
        return result


def bootstrap_alpha(
    sc: SparseCounts, metric: Metric, n_boot: int, seed: int, confidence: float
) -> ConfidenceInterval:
    """Percentile bootstrap CI of alpha resampling pairable units, like ``bootstrap_from_counts``
    (each resample's alpha is exactly the alpha of the resampled units)."""
    if isinstance(metric, str) or sc.k <= DENSE_MAX_CATEGORIES:
        return bootstrap_from_counts(sc.dense(), metric, n_boot, seed, confidence)
    if n_boot < 1 or not 0 < confidence < 1:
        raise ValueError("need n_boot >= 1 and 0 < confidence < 1")
    point = alpha(sc, metric)
    if point.value is None:
        return ConfidenceInterval(None, None, point.reason, confidence, n_boot, n_boot, seed)
    patterns = UnitPatterns.of(sc, metric)
    rng = np.random.default_rng(seed)
    resampled = [
        patterns.alphas(weights, metric)
        for weights in multinomial_chunks(rng, patterns.frequency, n_boot)
    ]
    return percentile_interval(np.concatenate(resampled), confidence, seed)


def others_majority(sc: SparseCounts, own: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Against one rater's codes `own` (per unit, MISSING where unrated): the others' plurality
    category per unit (MISSING when tied or absent), how many others rated the unit, and how
    many of them chose the rater's own category."""
    n_units = len(sc.m)
    mine = own[sc.unit] == sc.category
    others = sc.count - mine.astype(np.int64)
    n_others = sc.m - (own >= 0).astype(np.int64)
    same = np.zeros(n_units, dtype=np.int64)
    same[sc.unit[mine]] = others[mine]
    top = np.zeros(n_units, dtype=np.int64)
    np.maximum.at(top, sc.unit, others)
    at_top = (others == top[sc.unit]) & (others > 0)
    n_top = np.bincount(sc.unit[at_top], minlength=n_units)
    majority = np.full(n_units, MISSING, dtype=np.int64)
    single = at_top & (n_top[sc.unit] == 1)
    majority[sc.unit[single]] = sc.category[single]
    tied = (top > 0) & (n_top > 1)
    return np.where(tied, -2, majority), n_others, same


def rater_agreement(sc: SparseCounts, codes: IntArray) -> tuple[RaterAgreement, ...]:
    """Per rater, ``metrics_raters.rater_agreement`` without the dense count table."""
    k = sc.k
    weights = nominal_weights(k)
    out = []
    for r in range(codes.shape[0]):
        own = codes[r]
        majority_or_tie, n_others, same = others_majority(sc, own)
        shared = (own >= 0) & (n_others >= 1)
        alone = (own >= 0) & (n_others == 0)
        n_alone = int(alone.sum())
        n_raters = int(((codes >= 0) & shared[None, :]).any(axis=1).sum())
        units = np.flatnonzero(shared)
        tally_others = (len(units), n_alone, n_raters, len(units) + int(n_others[units].sum()))
        if len(units) == 0:
            with_others = Coefficient(None, NO_SHARED_WITH_OTHERS, *tally_others)
        else:
            value = float((same[units] / n_others[units]).mean())
            with_others = Coefficient(value, None, *tally_others, observed=value)
        majority = np.where(majority_or_tie >= 0, majority_or_tie, MISSING)
        has_majority = shared & (majority >= 0)
        n_major = int(has_majority.sum())
        undefined = Coefficient(None, NO_MAJORITY, 0, n_alone, 2, 0)
        if n_major:
            share = float((own[has_majority] == majority[has_majority]).mean())
            with_majority = Coefficient(share, None, n_major, n_alone, 2, 2 * n_major,
                                        observed=share)  # fmt: skip
            table = _pair_table(np.where(has_majority, own, MISSING), majority, k)
            kappa = kappa_from_table(table, weights, n_alone)
        else:
            with_majority, kappa = undefined, undefined
        kappas = [
            kappa_from_table(_pair_table(own, codes[s], k), weights, 0)
            for s in range(codes.shape[0])
            if s != r
        ]
        n_ratings = len(units) + int(n_others[units].sum())
        mean_kappa = mean_of_defined(kappas, (len(units), n_alone, n_raters, n_ratings))
        out.append(RaterAgreement(
            rater=r, with_others=with_others, with_majority=with_majority,
            kappa_with_majority=kappa, mean_kappa_with_others=mean_kappa,
            n_units_majority_tied=int((shared & (majority_or_tie == -2)).sum()),
        ))  # fmt: skip
    return tuple(out)


def per_label_agreement(
    codes: IntArray, membership: IntArray, labels: list[str]
) -> dict[str, LabelAgreement]:
    """``metrics_raters.per_label_agreement`` for every label at once, from category codes and
    which labels each category holds (``membership[c, l]``)."""
    rated = codes >= 0
    m = rated.sum(axis=0)
    keep = m >= 2
    n_units, dropped = int(keep.sum()), int((m == 1).sum())
    n_raters = int((rated & keep[None, :]).any(axis=1).sum())
    n_ratings = int(m[keep].sum())
    tally = (n_units, dropped, n_raters, n_ratings)
    member = membership.astype(np.bool_)
    has = [member[np.maximum(codes[r], 0)] & rated[r][:, None] for r in range(codes.shape[0])]
    pos = np.zeros((codes.shape[1], len(labels)), dtype=np.int64)
    for h in has:
        pos += h
    n_positive = pos.sum(axis=0)
    p = pos[keep].astype(np.float64)
    mu = m[keep].astype(np.float64)[:, None]
    q = mu - p
    kappas: list[list[Coefficient]] = [[] for _ in labels]
    weights = nominal_weights(2)
    for i in range(len(has)):
        for j in range(i + 1, len(has)):
            both = rated[i] & rated[j]
            a, b = has[i][both], has[j][both]
            n11 = (a & b).sum(axis=0)
            n10 = (a & ~b).sum(axis=0)
            n01 = (~a & b).sum(axis=0)
            n00 = int(both.sum()) - n11 - n10 - n01
            for col in range(len(labels)):
                table = np.array([[n00[col], n01[col]], [n10[col], n11[col]]], dtype=np.int64)
                kappas[col].append(kappa_from_table(table, weights, 0))
    out = {}
    for col, label in enumerate(labels):
        if n_units == 0:
            alpha_c = Coefficient(None, NO_PAIRABLE_UNITS, 0, dropped, n_raters, 0)
            percent = Coefficient(None, NO_PAIRABLE_UNITS, *tally)
            kappa = Coefficient(None, NO_PAIRABLE_UNITS, *tally)
        else:
            pc, qc = p[:, col], q[:, col]
            n1, n0 = float(pc.sum()), float(qc.sum())
            n = n0 + n1
            d_observed = 2 * float((pc * qc / (mu[:, 0] - 1)).sum()) / n
            d_expected = 2 * n0 * n1 / (n * (n - 1))
            if d_expected <= 0:
                alpha_c = Coefficient(None, ONE_CATEGORY_ALPHA, *tally)
            else:
                value = 1.0 - d_observed / d_expected
                alpha_c = Coefficient(value, None, *tally, d_observed, d_expected)
            share = float(((pc * (pc - 1) + qc * (qc - 1)) / (mu[:, 0] * (mu[:, 0] - 1))).mean())
            percent = Coefficient(share, None, *tally, observed=share)
            kappa = mean_of_defined(kappas[col], tally)
        out[label] = LabelAgreement(label, int(n_positive[col]), alpha_c, kappa, percent)
    return out
