"""The sparse-table coefficients equal the dense ones, on random data with many categories."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from app.agreement import metrics as m
from app.agreement import metrics_sparse as sparse
from app.agreement.metrics_alpha import (
    alpha_from_counts,
    level_metric,
    set_distance_matrix,
)
from app.agreement.metrics_encode import unit_counts
from app.agreement.metrics_kappa import fleiss_from_counts, percent_from_counts
from tests.unit.test_agreement_metrics import code_matrices


def _codes(seed: int, raters: int, units: int, k: int, fixed: bool = False) -> np.ndarray:
    """Raters x units codes, agreeing often, with missing ratings and single-rater units."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, units)
    codes = np.where(rng.random((raters, units)) < 0.6, truth, rng.integers(0, k, (raters, units)))
    if not fixed:
        codes[rng.random((raters, units)) < 0.35] = -1
    return codes.astype(np.int64)


CASES = [(s, r, u, k, fixed) for s, (r, u, k, fixed) in enumerate([
    (3, 300, 5, True), (4, 500, 40, False), (6, 200, 90, False), (2, 50, 3, False),
    (5, 400, 12, True), (3, 1, 2, False),
])]  # fmt: skip


@pytest.mark.parametrize(("seed", "raters", "units", "k", "fixed"), CASES)
def test_coefficients_equal_the_dense_ones(
    seed: int, raters: int, units: int, k: int, fixed: bool
) -> None:
    codes = _codes(seed, raters, units, k, fixed)
    counts = unit_counts(codes, k)
    sc = sparse.SparseCounts.from_codes(codes, k)
    assert (sc.dense() == counts).all()
    metric = level_metric("nominal", list(range(k)))
    dense, got = alpha_from_counts(counts, metric, codes), sparse.alpha(sc, metric, codes)
    assert (got.value is None) == (dense.value is None)
    if dense.value is not None:
        assert got.value == pytest.approx(dense.value, abs=1e-12)

    def tally(c: m.Coefficient) -> tuple[int, int, int | None, int]:
        return (c.n_units, c.n_units_dropped_single_rater, c.n_raters, c.n_ratings)

    assert tally(got) == tally(dense)
    assert sparse.percent_agreement(sc, codes) == percent_from_counts(counts, codes)
    fleiss, dense_fleiss = sparse.fleiss_kappa(sc, codes), fleiss_from_counts(counts, codes)
    assert fleiss.reason == dense_fleiss.reason
    if dense_fleiss.value is not None:
        assert fleiss.value == pytest.approx(dense_fleiss.value, abs=1e-12)
    for mine, theirs in zip(
        sparse.rater_agreement(sc, codes), m.rater_agreement(codes), strict=True
    ):
        assert mine.n_units_majority_tied == theirs.n_units_majority_tied
        for field in (
            "with_others",
            "with_majority",
            "kappa_with_majority",
            "mean_kappa_with_others",
        ):
            a, b = getattr(mine, field), getattr(theirs, field)
            assert (a.reason, a.n_units, a.n_units_dropped_single_rater, a.n_raters) == (
                b.reason, b.n_units, b.n_units_dropped_single_rater, b.n_raters), field  # fmt: skip
            assert a.value == pytest.approx(b.value, abs=1e-12), field


def test_set_distance_alpha_and_its_bootstrap() -> None:
    rng = np.random.default_rng(3)
    labels = [frozenset({str(i)}) for i in range(12)]
    sets = labels + [a | b for a in labels for b in labels if min(a) < min(b)][:60]
    codes = _codes(11, 3, 800, len(sets))
    metric = set_distance_matrix(sets, "masi")
    counts = unit_counts(codes, len(sets))
    sc = sparse.SparseCounts.from_codes(codes, len(sets))
    expected = alpha_from_counts(counts, metric, codes).value
    assert sparse.alpha(sc, metric).value == pytest.approx(expected, abs=1e-12)
    ci = sparse.bootstrap_alpha(sc, metric, 400, 1, 0.95)
    assert ci.low is not None
    assert ci.high is not None
    assert ci.low < expected < ci.high
    # A resample's alpha is exactly the alpha of the resampled units' dense table.
    patterns = sparse.UnitPatterns.of(sc, metric)
    assert patterns.frequency.sum() == (counts.sum(axis=1) >= 2).sum()
    table = sc.dense()
    for _ in range(5):
        weights = rng.multinomial(int(patterns.frequency.sum()),
                                  patterns.frequency / patterns.frequency.sum())  # fmt: skip
        resampled = np.repeat(table[patterns.representatives], weights, axis=0)
        direct = alpha_from_counts(resampled, metric, None).value
        assert patterns.alphas(weights[None, :], metric)[0] == pytest.approx(direct, abs=1e-12)
    # every unit is represented by a pattern with the same counts
    same = {tuple(table[u]) for u in patterns.representatives}
    assert len(same) == len(patterns.representatives)


def test_undefined_cases_match() -> None:
    one_category = np.zeros((3, 10), dtype=np.int64)
    sc = sparse.SparseCounts.from_codes(one_category, 40)
    metric = level_metric("nominal", list(range(40)))
    assert sparse.alpha(sc, metric).reason == m.krippendorff_alpha(one_category).reason
    ci = sparse.bootstrap_alpha(sc, metric, 20, 0, 0.95)
    assert ci.low is None
    assert ci.reason is not None
    lonely = np.array([[0, -1], [-1, 1]], dtype=np.int64)
    sc = sparse.SparseCounts.from_codes(lonely, 2)
    assert (
        sparse.alpha(sc, level_metric("nominal", [0, 1])).reason
        == m.krippendorff_alpha(lonely).reason
    )
    assert sparse.percent_agreement(sc).value is None


@pytest.mark.parametrize("seed", range(4))
def test_per_label_figures_equal_the_one_vs_rest_functions(seed: int) -> None:
    labels = [str(i) for i in range(7)]
    sets = [frozenset({a}) for a in labels] + [frozenset({"0", "1"}), frozenset({"2", "5", "6"})]
    codes = _codes(seed, 2 + seed, 120, len(sets))
    if seed == 3:
        codes[:, :] = -1
        codes[0, :5] = 1  # no pairable unit at all
    membership = np.array([[label in s for label in labels] for s in sets], dtype=np.int64)
    got = sparse.per_label_agreement(codes, membership, labels)
    grid = [[sets[c] if c >= 0 else None for c in row] for row in codes.tolist()]
    expected = m.per_label_agreement(grid, labels)
    for label in labels:
        a, b = got[label], expected[label]
        assert a.n_positive == b.n_positive
        for field in ("alpha", "mean_kappa", "percent_agreement"):
            x, y = getattr(a, field), getattr(b, field)
            assert x.reason == y.reason, field
            assert (x.n_units, x.n_units_dropped_single_rater) == (
                y.n_units,
                y.n_units_dropped_single_rater,
            ), field
            assert (x.n_raters, x.n_ratings) == (y.n_raters, y.n_ratings), field
            assert x.value == pytest.approx(y.value, abs=1e-12), field


@settings(max_examples=80, deadline=None, database=None)
@given(matrix=code_matrices)
def test_sparse_and_dense_agree_on_any_matrix(matrix: np.ndarray) -> None:
    """Hypothesis: every coefficient the dashboard takes from the sparse table equals the dense
    one, including the undefined cases and their counts."""
    k = int(matrix.max()) + 1 if (matrix >= 0).any() else 1
    counts = unit_counts(matrix, k)
    sc = sparse.SparseCounts.from_codes(matrix, k)
    metric = level_metric("nominal", list(range(k)))
    pairs = [
        (sparse.alpha(sc, metric, matrix), alpha_from_counts(counts, metric, matrix)),
        (sparse.percent_agreement(sc, matrix), percent_from_counts(counts, matrix)),
        (sparse.fleiss_kappa(sc, matrix), fleiss_from_counts(counts, matrix)),
    ]
    for mine, theirs in zip(
        sparse.rater_agreement(sc, matrix), m.rater_agreement(matrix), strict=True
    ):
        for field in ("with_others", "with_majority", "kappa_with_majority",
                      "mean_kappa_with_others"):  # fmt: skip
            pairs.append((getattr(mine, field), getattr(theirs, field)))
    for mine, theirs in pairs:
        assert mine.reason == theirs.reason
        assert (mine.n_units, mine.n_raters, mine.n_ratings) == (
            theirs.n_units,
            theirs.n_raters,
            theirs.n_ratings,
        )
        assert mine.value == pytest.approx(theirs.value, abs=1e-9)
