"""Agreement metrics: cross-checks against reference libraries, properties, API behaviour."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from sklearn.metrics import cohen_kappa_score  # type: ignore[import-untyped]
from statsmodels.stats.inter_rater import (  # type: ignore[import-untyped]
    aggregate_raters,
)
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from app.agreement.metrics import (
    Coefficient,
    KappaWeights,
    Level,
    bootstrap_alpha_ci,
    bootstrap_alpha_set_ci,
    cohen_kappa,
    confusion_matrix,
    count_table,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    krippendorff_alpha_from_counts,
    krippendorff_alpha_set,
    majority_confusion_matrix,
    majority_labels,
    mean_pairwise_cohen_kappa,
    pairwise_matrix,
    per_label_agreement,
    percent_agreement,
    rater_agreement,
    set_distance_matrix,
    weighted_cohen_kappa,
)
from app.agreement.metrics_alpha import _alpha_of_resamples, _unit_patterns, level_metric
from app.agreement.metrics_encode import unit_counts

LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
WEIGHTS: tuple[KappaWeights, ...] = ("linear", "quadratic")
EXACT = 1e-9
# No example database: the suite must not leave a .hypothesis directory in the repo.
PROPERTY = settings(max_examples=60, deadline=None, database=None)
FloatMatrix = NDArray[np.float64]
IntMatrix = NDArray[np.int64]
SetRows = list[list[frozenset[str] | None]]


def _value(c: Coefficient) -> float:
    assert c.value is not None, f"undefined: {c.reason}"
    return c.value


def _same(a: float | None, b: float | None, tol: float = EXACT) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=tol)
    )


def _random_matrix(rng: np.random.Generator, *, missing: bool = True) -> FloatMatrix:
    """Ratings 1..k of raters who agree on a hidden truth more or less often, NaN = missing."""
    n_raters, n_units, k = rng.integers(2, 7), rng.integers(5, 80), rng.integers(2, 8)
    truth = rng.integers(1, k + 1, n_units)
    noisy = rng.random((n_raters, n_units)) < rng.uniform(0.1, 0.9)
    data = np.where(noisy, rng.integers(1, k + 1, (n_raters, n_units)), truth).astype(float)
    if missing:
        data[rng.random(data.shape) < rng.uniform(0.0, 0.5)] = np.nan
    return data


def _pairable_values(data: FloatMatrix) -> NDArray[np.float64]:
    keep = (~np.isnan(data)).sum(axis=0) >= 2
    column_values: NDArray[np.float64] = data[:, keep]
    return column_values[~np.isnan(column_values)]


# ---- cross-checks against krippendorff, statsmodels and scikit-learn ------------------


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_krippendorff_package(level: Level) -> None:
    rng = np.random.default_rng(20240611)
    compared = 0
    for trial in range(30):
        data = _random_matrix(rng)
        if trial % 3 == 1:
            data = data * 0.5 - 0.5  # non-integer values, zero included (ratio's 0/0 case)
        if np.unique(_pairable_values(data)).size < 2:
            continue
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        got = krippendorff_alpha(data, level)
        assert _value(got) == pytest.approx(expected, abs=EXACT), (trial, level)
        compared += 1
    assert compared >= 25


def test_alpha_matches_krippendorff_package_on_continuous_values() -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        data = np.abs(rng.normal(10, 2, (3, 25)) + rng.normal(0, 3, 25))
        data[rng.random(data.shape) < 0.2] = np.nan
        for level in ("interval", "ratio"):
            expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
            assert _value(krippendorff_alpha(data, level)) == pytest.approx(expected, abs=EXACT)


def test_fleiss_matches_statsmodels() -> None:
    rng = np.random.default_rng(11)
    for _ in range(25):
        data = _random_matrix(rng, missing=False).astype(np.int64)
        table, _ = aggregate_raters(data.T)  # statsmodels wants (subjects, raters)
        expected = sm_fleiss_kappa(table, method="fleiss")
        assert _value(fleiss_kappa(data)) == pytest.approx(expected, abs=EXACT)
        assert _value(fleiss_kappa_from_counts(table)) == pytest.approx(expected, abs=EXACT)


def test_cohen_kappa_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    compared = 0
    for _ in range(40):
        a, b = _random_matrix(rng)[:2]
        both = ~np.isnan(a) & ~np.isnan(b)
        if np.unique(np.concatenate([a[both], b[both]])).size < 2:
            continue
        x, y = a[both].astype(int), b[both].astype(int)
        assert _value(cohen_kappa(a, b)) == pytest.approx(cohen_kappa_score(x, y), abs=EXACT)
        for weights in WEIGHTS:
            expected = cohen_kappa_score(x, y, weights=weights)
            got = weighted_cohen_kappa(a, b, weights)
            assert _value(got) == pytest.approx(expected, abs=EXACT)
            # With the full scale given, unused scale points keep their place (sklearn's labels).
            scale = list(range(1, 8))
            expected = cohen_kappa_score(x, y, weights=weights, labels=scale)
            got = weighted_cohen_kappa(a, b, weights, levels=scale)
            assert _value(got) == pytest.approx(expected, abs=EXACT)
        compared += 1
    assert compared >= 30


def test_per_label_alpha_matches_krippendorff_package() -> None:
    rng = np.random.default_rng(5)
    labels = ["a", "b", "c", "d"]
    data = _random_sets(rng, labels, n_raters=4, n_units=60)
    result = per_label_agreement(data, labels=[*labels, "never"])
    for label in labels:
        binary = np.array([[np.nan if s is None else float(label in s) for s in r] for r in data])
        expected = krippendorff.alpha(reliability_data=binary, level_of_measurement="nominal")
        assert _value(result[label].alpha) == pytest.approx(expected, abs=EXACT)
        pairs = []
        for i, j in itertools.combinations(range(len(data)), 2):
            both = ~np.isnan(binary[i]) & ~np.isnan(binary[j])
            pairs.append(cohen_kappa_score(binary[i][both], binary[j][both]))
        assert _value(result[label].mean_kappa) == pytest.approx(np.mean(pairs), abs=EXACT)
        assert result[label].n_positive == int(np.nansum(binary))
    never = result["never"]
    assert never.alpha.value is None
    assert never.mean_kappa.value is None
    assert never.percent_agreement.value == 1.0


# ---- set-valued alpha against a direct, pair-by-pair implementation -------------------


def _masi(a: frozenset[str], b: frozenset[str]) -> float:
    """MASI distance straight from Passonneau (2006)."""
    if a == b:
        return 0.0
    jaccard = len(a & b) / len(a | b)
    if a <= b or b <= a:
        monotonicity = 2 / 3
    elif a & b:
        monotonicity = 1 / 3
    else:
        monotonicity = 0.0
    return 1 - jaccard * monotonicity


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return 0.0 if a == b else 1 - len(a & b) / len(a | b)


def _alpha_by_pairs(
    data: SetRows, distance: Callable[[frozenset[str], frozenset[str]], float]
) -> float | None:
    """Alpha as 1 - D_o / D_e with explicit sums over value pairs (no coincidence matrix)."""
    units = [[s for s in unit if s is not None] for unit in zip(*data, strict=True)]
    units = [u for u in units if len(u) >= 2]
    values = [s for u in units for s in u]
    n = len(values)
    if n == 0:
        return None
    observed = sum(
        sum(distance(x, y) for x, y in itertools.permutations(u, 2)) / (len(u) - 1) for u in units
    )
    expected = sum(distance(x, y) for x, y in itertools.permutations(values, 2)) / (n - 1)
    return None if expected == 0 else 1 - observed / expected


def _random_sets(
    rng: np.random.Generator, labels: Sequence[str], n_raters: int, n_units: int
) -> SetRows:
    truth = [frozenset(x for x in labels if rng.random() < 0.35) for _ in range(n_units)]
    rows: SetRows = []
    for _ in range(n_raters):
        row: list[frozenset[str] | None] = []
        for t in truth:
            if rng.random() < 0.15:
                row.append(None)
            elif rng.random() < 0.5:
                row.append(t)
            else:
                row.append(frozenset(x for x in labels if rng.random() < 0.35))
        rows.append(row)
    return rows


def test_masi_distance_values() -> None:
    sets = [frozenset(), frozenset("a"), frozenset("ab"), frozenset("bc"), frozenset("c")]
    masi = set_distance_matrix(sets, "masi")
    assert masi[0, 0] == 0.0  # two empty sets are identical
    assert masi[0, 1] == 1.0
    assert masi[1, 2] == pytest.approx(1 - 1 / 2 * 2 / 3)  # subset
    assert masi[2, 3] == pytest.approx(1 - 1 / 3 * 1 / 3)  # overlap
    assert masi[1, 4] == 1.0  # disjoint
    jaccard = set_distance_matrix(sets, "jaccard")
    assert jaccard[2, 3] == pytest.approx(2 / 3)
    assert np.allclose(masi, masi.T)
    assert np.allclose(jaccard, jaccard.T)


@pytest.mark.parametrize(("distance", "reference"), [("masi", _masi), ("jaccard", _jaccard)])
def test_set_alpha_matches_pairwise_definition(
    distance: Any, reference: Callable[[frozenset[str], frozenset[str]], float]
) -> None:
    rng = np.random.default_rng(13)
    for _ in range(10):
        data = _random_sets(rng, "abcd", n_raters=int(rng.integers(2, 5)), n_units=30)
        expected = _alpha_by_pairs(data, reference)
        assert _same(krippendorff_alpha_set(data, distance).value, expected)


# ---- hypothesis properties --------------------------------------------------------------

code_matrices = arrays(
    np.int64, st.tuples(st.integers(2, 5), st.integers(1, 12)), elements=st.integers(-1, 3)
)


def _pooled(data: Any, levels: Sequence[Level] = LEVELS) -> dict[str, float | None]:
    """Every rater-order-free coefficient of a rating matrix."""
    out = {f"alpha_{level}": krippendorff_alpha(data, level).value for level in levels}
    out["fleiss"] = fleiss_kappa(data).value
    out["mean_kappa"] = mean_pairwise_cohen_kappa(data).value
    out["percent"] = percent_agreement(data).value
    return out


def _per_rater(data: Any) -> list[list[float | None]]:
    """Per-rater values: rater-vs-others and the rater's row of the pairwise matrices."""
    rows = [
        [
            r.with_others.value,
            r.with_majority.value,
            r.kappa_with_majority.value,
            r.mean_kappa_with_others.value,
        ]
        for r in rater_agreement(data)
    ]
    for statistic in ("agreement", "cohen_kappa"):
        matrix = pairwise_matrix(data, statistic)
        for row, cells in zip(rows, matrix, strict=True):
            row.extend(c.value for c in cells)
    return rows


def _assert_same_rows(a: list[list[float | None]], b: list[list[float | None]]) -> None:
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert all(_same(x, y) for x, y in zip(row_a, row_b, strict=True)), (row_a, row_b)


def _assert_same(a: dict[str, float | None], b: dict[str, float | None]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert _same(a[key], b[key]), (key, a[key], b[key])


@PROPERTY
@given(truth=arrays(np.int64, st.integers(1, 12), elements=st.integers(0, 3)), data=st.data())
def test_identical_raters_give_one(truth: IntMatrix, data: st.DataObject) -> None:
    n_raters = data.draw(st.integers(2, 5))
    rated = data.draw(arrays(np.bool_, (n_raters, truth.size)))
    matrix = np.where(rated, truth, -1)
    values = list(_pooled(matrix).values())
    values += [v for row in _per_rater(matrix) for v in row]
    values += [weighted_cohen_kappa(matrix[0], matrix[1], w).value for w in WEIGHTS]
    sets = [[frozenset(str(v)) if v >= 0 else None for v in row] for row in matrix.tolist()]
    values += [krippendorff_alpha_set(sets, d).value for d in ("masi", "jaccard")]
    assert all(v is None or v == pytest.approx(1.0, abs=EXACT) for v in values), values
    # ...and "when defined" is not a loophole: with two categories among pairable units,
    # alpha must be defined.
    pairable = matrix[:, (matrix >= 0).sum(axis=0) >= 2]
    if np.unique(pairable[pairable >= 0]).size >= 2:
        assert krippendorff_alpha(matrix).value == 1.0
        assert percent_agreement(matrix).value == 1.0


@PROPERTY
@given(matrix=code_matrices, data=st.data())
def test_permuting_raters_changes_nothing(matrix: IntMatrix, data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(matrix.shape[0])))
    permuted = matrix[list(order)]
    _assert_same(_pooled(matrix), _pooled(permuted))
    before, after = _per_rater(matrix), _per_rater(permuted)
    for new_index, old_index in enumerate(order):
        moved = after[new_index][:4]  # pairwise rows are permuted too: compare the summary
        assert all(_same(x, y) for x, y in zip(moved, before[old_index][:4], strict=True))
        for statistic_offset in (4, 4 + len(order)):
            row_after = after[new_index][statistic_offset : statistic_offset + len(order)]
            row_before = before[old_index][statistic_offset : statistic_offset + len(order)]
            assert all(_same(row_after[j], row_before[order[j]]) for j in range(len(order)))


@PROPERTY
@given(matrix=code_matrices, data=st.data())
def test_permuting_units_changes_nothing(matrix: IntMatrix, data: st.DataObject) -> None:
    order = list(data.draw(st.permutations(range(matrix.shape[1]))))
    permuted = matrix[:, order]
    _assert_same(_pooled(matrix), _pooled(permuted))
    _assert_same_rows(_per_rater(matrix), _per_rater(permuted))


@PROPERTY
@given(matrix=code_matrices, names=st.permutations(["calm", "sad", "angry", "fear"]))
def test_renaming_labels_changes_nothing(matrix: IntMatrix, names: list[str]) -> None:
    renamed = [[names[v] if v >= 0 else None for v in row] for row in matrix.tolist()]
    _assert_same(_pooled(matrix, ["nominal"]), _pooled(renamed, ["nominal"]))
    _assert_same_rows(_per_rater(matrix), _per_rater(renamed))


@PROPERTY
@given(matrix=code_matrices, scale=st.floats(0.1, 10), shift=st.floats(-5, 5))
def test_rescaling_keeps_ordinal_interval_ratio_alpha(
    matrix: IntMatrix, scale: float, shift: float
) -> None:
    floats = np.where(matrix >= 0, matrix, np.nan).astype(float)
    before = _pooled(floats)
    # Ordinal alpha only sees the order, interval alpha is affine-invariant, ratio alpha
    # is invariant to a change of unit.
    monotone = np.where(matrix >= 0, np.exp(matrix.astype(float)), np.nan)
    assert _same(krippendorff_alpha(monotone, "ordinal").value, before["alpha_ordinal"])
    affine = krippendorff_alpha(floats * -scale + shift, "interval").value
    assert _same(affine, before["alpha_interval"], 1e-7)
    assert _same(krippendorff_alpha(floats * scale, "ratio").value, before["alpha_ratio"], 1e-7)


@PROPERTY
@given(matrix=code_matrices, data=st.data())
def test_unit_with_one_rater_changes_nothing(matrix: IntMatrix, data: st.DataObject) -> None:
    rater = data.draw(st.integers(0, matrix.shape[0] - 1))
    value = data.draw(st.integers(0, 9))  # may be a value nobody else used
    column = np.full((matrix.shape[0], 1), -1)
    column[rater, 0] = value
    extended = np.hstack([matrix, column])
    _assert_same(_pooled(matrix), _pooled(extended))
    _assert_same_rows(_per_rater(matrix), _per_rater(extended))
    before, after = krippendorff_alpha(matrix), krippendorff_alpha(extended)
    assert after.n_units_dropped_single_rater == before.n_units_dropped_single_rater + 1


set_cells = st.one_of(st.none(), st.frozensets(st.sampled_from("abc"), max_size=3))
set_matrices = st.integers(1, 10).flatmap(
    lambda n: st.lists(st.lists(set_cells, min_size=n, max_size=n), min_size=2, max_size=4)
)


def _set_alphas(data: SetRows) -> dict[str, float | None]:
    out = {d: krippendorff_alpha_set(data, d).value for d in ("masi", "jaccard")}
    for label, result in per_label_agreement(data, labels=["a", "b", "c"]).items():
        out[f"{label}_alpha"] = result.alpha.value
        out[f"{label}_kappa"] = result.mean_kappa.value
        out[f"{label}_percent"] = result.percent_agreement.value
    return out


@PROPERTY
@given(data=set_matrices, draw=st.data())
def test_set_alpha_invariances(data: SetRows, draw: st.DataObject) -> None:
    reference = _set_alphas(data)
    assert _same(reference["masi"], _alpha_by_pairs(data, _masi))
    raters = draw.draw(st.permutations(range(len(data))))
    units = draw.draw(st.permutations(range(len(data[0]))))
    _assert_same(reference, _set_alphas([[data[r][u] for u in units] for r in raters]))
    rename = {"a": "b", "b": "c", "c": "a"}
    renamed = [[None if s is None else frozenset(rename[x] for x in s) for s in r] for r in data]
    got = _set_alphas(renamed)
    assert _same(got["masi"], reference["masi"])
    assert _same(got["jaccard"], reference["jaccard"])
    assert _same(got["b_alpha"], reference["a_alpha"])
    lonely = [[*row, frozenset("z") if i == 0 else None] for i, row in enumerate(data)]
    _assert_same(reference, _set_alphas(lonely))


# ---- rater views -------------------------------------------------------------------------

RATERS = [
    ["a", "a", "b", "a", None],
    ["a", "b", "b", None, "c"],
    ["a", "b", "c", "a", None],
]


def test_majority_labels_plurality_and_ties() -> None:
    assert majority_labels(RATERS) == ["a", "b", "b", "a", "c"]
    assert majority_labels(RATERS, exclude_rater=0) == ["a", "b", None, "a", "c"]
    assert majority_labels(RATERS, exclude_rater=1) == ["a", None, None, "a", None]
    assert majority_labels([["x", "y"], ["x", "y"], ["y", "z"], [None, "w"]]) == ["x", "y"]


def test_rater_agreement_by_hand() -> None:
    first = rater_agreement(RATERS)[0]
    # Units 0-3: others (a,a), (b,b), (b,c), (a): rater 0 says a, a, b, a.
    assert _value(first.with_others) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert (first.with_others.n_units, first.with_others.n_units_dropped_single_rater) == (4, 0)
    assert first.n_units_majority_tied == 1  # unit 2: others split b / c
    assert _value(first.with_majority) == pytest.approx(2 / 3)
    # rater (a, a, a) vs majority (a, b, a): p_o = 2/3 = p_e, so kappa is 0 (and defined).
    assert _value(first.kappa_with_majority) == pytest.approx(0.0)
    kappas = [cohen_kappa(RATERS[0], RATERS[s]).value for s in (1, 2)]
    expected = np.mean([k for k in kappas if k is not None])
    assert _value(first.mean_kappa_with_others) == pytest.approx(expected)


def test_rater_without_company_is_undefined() -> None:
    lonely = rater_agreement([["a", None, None], [None, "b", "a"], [None, "b", "b"]])[0]
    for coefficient in (lonely.with_others, lonely.with_majority, lonely.mean_kappa_with_others):
        assert coefficient.value is None
        assert coefficient.reason
    assert lonely.with_others.n_units_dropped_single_rater == 1


def test_pairwise_matrix_by_hand() -> None:
    agreement = pairwise_matrix(RATERS, "agreement")
    assert _value(agreement[0][1]) == pytest.approx(2 / 3)
    assert _value(agreement[0][2]) == pytest.approx(2 / 4)
    assert agreement[0][1] is agreement[1][0]
    assert agreement[1][1].value is None
    kappa = pairwise_matrix(RATERS, "cohen_kappa")
    assert _same(kappa[0][2].value, cohen_kappa(RATERS[0], RATERS[2]).value)
    disjoint = pairwise_matrix([["a", None], [None, "a"]], "agreement")
    assert disjoint[0][1].value is None
    assert disjoint[0][1].reason == "the two raters share no rated unit"


def test_confusion_matrices() -> None:
    table = confusion_matrix(RATERS[0], RATERS[1])
    assert table.labels == ("a", "b", "c")
    assert table.counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert table.n_units_skipped == 2
    wide = confusion_matrix(RATERS[0], RATERS[1], labels=["c", "b", "a", "d"])
    assert wide.counts.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="not among"):
        confusion_matrix(RATERS[0], RATERS[1], labels=["a"])
    versus_majority = majority_confusion_matrix(RATERS, 0)
    assert versus_majority.counts.tolist() == [[2, 1, 0], [0, 0, 0], [0, 0, 0]]
    assert versus_majority.n_units_skipped == 1


# ---- bootstrap ---------------------------------------------------------------------------


def test_bootstrap_is_deterministic_and_brackets_the_estimate() -> None:
    data = _random_matrix(np.random.default_rng(17))
    first = bootstrap_alpha_ci(data, "nominal", n_boot=500, seed=1)
    assert first == bootstrap_alpha_ci(data, "nominal", n_boot=500, seed=1)
    other = bootstrap_alpha_ci(data, "nominal", n_boot=500, seed=2)
    assert (first.low, first.high) != (other.low, other.high)
    assert first.low is not None
    assert first.high is not None
    assert first.low <= _value(krippendorff_alpha(data)) <= first.high


@pytest.mark.parametrize("level", LEVELS)
def test_each_resample_is_the_alpha_of_the_resampled_units(level: Level) -> None:
    data = _random_matrix(np.random.default_rng(23))
    table = count_table(data)
    counts = table.counts[table.counts.sum(axis=1) >= 2]
    patterns, frequency = _unit_patterns(counts)
    weights = np.random.default_rng(0).multinomial(frequency.sum(), frequency / frequency.sum(), 5)
    metric = level_metric(level, table.categories)
    got = _alpha_of_resamples(patterns, weights, metric)
    for w, alpha in zip(weights, got, strict=True):
        resampled = np.repeat(patterns, w, axis=0).astype(np.int64)
        values = [float(str(c)) for c in table.categories]
        expected = krippendorff_alpha_from_counts(resampled, level, values)
        assert _same(None if np.isnan(alpha) else float(alpha), expected.value)


def test_bootstrap_agrees_with_naive_unit_resampling() -> None:
    rng = np.random.default_rng(29)
    truth = rng.integers(0, 4, 150)
    data = np.where(rng.random((3, 150)) < 0.6, truth, rng.integers(0, 4, (3, 150)))
    naive = []
    for _ in range(1000):
        naive.append(_value(krippendorff_alpha(data[:, rng.integers(0, 150, 150)])))
    low, high = np.quantile(naive, [0.025, 0.975])
    ci = bootstrap_alpha_ci(data, n_boot=1000, seed=3)
    assert ci.low == pytest.approx(low, abs=0.03)
    assert ci.high == pytest.approx(high, abs=0.03)


def test_bootstrap_undefined_resamples_are_counted() -> None:
    # Two perfectly agreeing units in different categories: any resample that draws the
    # same unit twice has one category only, so its alpha is undefined and left out.
    ci = bootstrap_alpha_ci([["x", "y"], ["x", "y"]], n_boot=400, seed=0)
    assert 100 < ci.n_boot_undefined < 300
    assert (ci.low, ci.high) == (1.0, 1.0)
    undefined = bootstrap_alpha_ci([["x", "x"], ["x", "x"]], n_boot=50)
    assert undefined.low is None
    assert undefined.reason == "every rating is in one category: expected disagreement is 0"


def test_set_bootstrap() -> None:
    data = _random_sets(np.random.default_rng(31), "abcd", n_raters=3, n_units=80)
    ci = bootstrap_alpha_set_ci(data, "masi", n_boot=300, seed=4)
    assert ci.low is not None
    assert ci.high is not None
    assert ci.low < _value(krippendorff_alpha_set(data, "masi")) < ci.high


# ---- input conventions and guards -------------------------------------------------------


def test_missing_markers_by_input_type() -> None:
    codes = np.array([[0, 1, -1], [0, 1, 1]])
    assert count_table(codes).categories == (0, 1)
    assert krippendorff_alpha(codes).n_units_dropped_single_rater == 1
    # In Python lists only None/NaN are missing: -1 is a rating like any other.
    assert count_table([[0, 1, -1], [0, 1, 1]]).categories == (-1, 0, 1)
    assert krippendorff_alpha([[0, 1, -1], [0, 1, 1]]).n_ratings == 6
    assert count_table([[0.0, 1.0, math.nan], [0.0, 1.0, 1.0]]).counts.sum() == 5
    # Rows of different dtypes keep their own markers.
    mixed = cohen_kappa(np.array([0, 1, -1, 1]), np.array([0.0, 1.0, 1.0, np.nan]))
    assert (mixed.n_units, mixed.n_units_dropped_single_rater) == (2, 2)
    with pytest.raises(ValueError, match="negative"):
        krippendorff_alpha(np.array([[0, -2], [1, 1]]))


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(TypeError, match="numeric"):
        krippendorff_alpha([["a", "b"], ["a", "a"]], "interval")
    with pytest.raises(ValueError, match="non-negative"):
        krippendorff_alpha(np.array([[-1.5, 2.0], [1.0, 2.0]]), "ratio")
    with pytest.raises(ValueError, match="one entry per unit"):
        cohen_kappa([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="one entry per unit"):
        krippendorff_alpha_set([[frozenset("a")], []])
    with pytest.raises(TypeError, match="sets"):
        krippendorff_alpha_set([["ab", "a"], ["a", "a"]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="levels"):
        weighted_cohen_kappa([1, 2], [2, 3], levels=[1, 2])
    with pytest.raises(ValueError, match="either a value or a reason"):
        Coefficient(0.5, "both", 1, 0, 2, 2)
    with pytest.raises(ValueError, match="non-finite"):
        Coefficient(math.nan, None, 1, 0, 2, 2)


def test_undefined_reasons_and_counts() -> None:
    nobody_pairs = krippendorff_alpha([[1, None], [None, 2]])
    assert nobody_pairs.value is None
    assert nobody_pairs.reason == "fewer than two raters on every unit"
    assert (nobody_pairs.n_units, nobody_pairs.n_units_dropped_single_rater) == (0, 2)
    unequal = fleiss_kappa([[1, 2, 1], [1, 2, 2], [1, None, 2]])
    assert unequal.value is None
    assert "Fleiss' kappa needs the same number" in str(unequal.reason)
    assert cohen_kappa([1, None], [None, 2]).reason == "the two raters share no rated unit"
    assert percent_agreement([[1, None], [None, 1]]).value is None
    # Raters who each stick to their own single category: p_o = p_e = 0, so kappa is 0.
    assert _value(cohen_kappa(["x", "x"], ["y", "y"])) == 0.0


def test_alpha_components_are_reported() -> None:
    result = krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 1]], "interval")
    assert result.observed is not None
    assert result.expected is not None
    assert _value(result) == pytest.approx(1 - result.observed / result.expected)
    kappa = cohen_kappa([1, 2, 3, 3], [1, 2, 3, 1])
    assert kappa.observed == pytest.approx(0.75)
    assert kappa.expected is not None
    assert _value(kappa) == pytest.approx((0.75 - kappa.expected) / (1 - kappa.expected))


def test_count_table_is_the_compact_form() -> None:
    data = _random_matrix(np.random.default_rng(37))
    table = count_table(data)
    assert table.counts.sum() == int((~np.isnan(data)).sum())
    assert unit_counts(np.array([[0, 1], [1, -1]]), 2).tolist() == [[1, 1], [0, 1]]
    values = [float(str(c)) for c in table.categories]
    for level in LEVELS:
        direct = krippendorff_alpha(data, level)
        compact = krippendorff_alpha_from_counts(table.counts, level, values)
        assert _same(direct.value, compact.value)


def test_large_nominal_data_is_fast() -> None:
    rng = np.random.default_rng(41)
    n_units = 300_000
    truth = rng.integers(0, 5, n_units)
    codes = np.where(rng.random((3, n_units)) < 0.7, truth, rng.integers(0, 5, (3, n_units)))
    codes[rng.random(codes.shape) < 0.1] = -1
    start = time.perf_counter()
    alpha = krippendorff_alpha(codes)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    ci = bootstrap_alpha_ci(codes, n_boot=1000, seed=0)
    elapsed_ci = time.perf_counter() - start
    # Generous bounds (typically ~0.05 s and ~0.15 s): they catch a per-unit Python loop.
    assert elapsed < 2.0
    assert elapsed_ci < 5.0
    assert alpha.n_units + alpha.n_units_dropped_single_rater <= n_units
    assert ci.low is not None
    assert ci.high is not None
    assert ci.low < _value(alpha) < ci.high
