"""Published agreement examples (../shared/reference/agreement-vectors.json) reproduced."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.agreement.metrics import (
    Coefficient,
    KappaWeights,
    Level,
    cohen_kappa,
    cohen_kappa_from_confusion,
    count_table,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    krippendorff_alpha_from_counts,
    krippendorff_alpha_set,
    mean_pairwise_cohen_kappa,
    percent_agreement,
    pivot_ratings,
    unit_agreement,
    weighted_cohen_kappa,
)

VECTORS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "agreement-vectors.json"
)
DEFAULT_TOLERANCE = 1e-4
Matrix = list[list[int | None]]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
WEIGHTED: dict[str, KappaWeights] = {
    "cohen_kappa_linear": "linear",
    "cohen_kappa_quadratic": "quadratic",
}


def _load() -> dict[str, Any] | None:
    if not VECTORS.is_file():
        return None
    doc: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return doc


DOC = _load()
MISSING_FILE = pytest.param(
    None, id="no-vectors", marks=pytest.mark.skip(reason=f"reference vectors not found: {VECTORS}")
)
CASES = [pytest.param(c, id=c["id"]) for c in DOC["cases"]] if DOC else [MISSING_FILE]
EDGE_CASES = (
    [pytest.param(text, id=f"edge{i}") for i, text in enumerate(DOC["edge_cases"])]
    if DOC
    else [MISSING_FILE]
)


def _value(c: Coefficient) -> float:
    assert c.value is not None, f"undefined: {c.reason}"
    return c.value


# ---- turning each layout into what the API takes ---------------------------------------


def _raters_by_units(case: dict[str, Any]) -> list[list[float | None]]:
    layout = case["layout"]
    if layout == "raters_by_units":
        return list(case["data"].values())
    if layout == "subjects_by_ratings":
        # Raters are not identified: column j of a subject is "rater j", which no metric
        # here depends on (alpha and Fleiss only use per-unit counts).
        return [list(col) for col in zip(*case["data"], strict=True)]
    if layout == "two_rater_vectors":
        return list(case["data"].values())
    if layout == "confusion_matrix":
        return [list(v) for v in _expand_confusion(case["data"])]
    raise AssertionError(f"no rater matrix for layout {layout}")


def _expand_confusion(table: list[list[int]]) -> tuple[list[int], list[int]]:
    """One (row category, column category) pair per counted item, categories 1..K."""
    a: list[int] = []
    b: list[int] = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [i + 1] * count
            b += [j + 1] * count
    return a, b


def _two_rater_kappa(case: dict[str, Any], weights: KappaWeights | None) -> list[Coefficient]:
    """The kappa from every path the API offers, so they are all held to the same value."""
    a, b = _raters_by_units(case)
    results = [cohen_kappa(a, b) if weights is None else weighted_cohen_kappa(a, b, weights)]
    if case["layout"] == "confusion_matrix":
        results.append(cohen_kappa_from_confusion(case["data"], weights))
    return results


def _compute(case: dict[str, Any], key: str) -> list[Any]:
    """Every computed value that must match ``expected[key]``."""
    layout, data = case["layout"], case["data"]
    if key.startswith("alpha_"):
        (level,) = (lv for lv in LEVELS if key == f"alpha_{lv}")
        matrix = _raters_by_units(case)
        # The same alpha from the compact count table the SQL layer will produce.
        table = count_table(matrix)
        values = [float(str(c)) for c in table.categories]
        from_counts = krippendorff_alpha_from_counts(table.counts, level, values)
        return [_value(krippendorff_alpha(matrix, level)), _value(from_counts)]
    if key == "fleiss_kappa":
        if layout == "subjects_by_category_counts":
            return [_value(fleiss_kappa_from_counts(data))]
        matrix = _raters_by_units(case)
        counts = count_table(matrix).counts
        return [_value(fleiss_kappa(matrix)), _value(fleiss_kappa_from_counts(counts))]
    if key == "category_totals":
        return [count_table(_raters_by_units(case)).counts.sum(axis=0).tolist()]
    if key == "row_agreement":
        return [unit_agreement(data)]
    if key == "cohen_kappa":
        pairwise = mean_pairwise_cohen_kappa(_raters_by_units(case))
        return [_value(c) for c in [*_two_rater_kappa(case, None), pairwise]]
    if key in WEIGHTED:
        return [_value(c) for c in _two_rater_kappa(case, WEIGHTED[key])]
    if key in ("observed_agreement", "expected_agreement"):
        results = _two_rater_kappa(case, None)
        return [c.observed if key == "observed_agreement" else c.expected for c in results]
    raise AssertionError(f"test does not know expected key {key!r}: extend _compute")


@pytest.mark.parametrize("case", CASES)
def test_reference_case(case: dict[str, Any]) -> None:
    tolerances = case.get("tolerance", {})
    assert case["expected"], "a case without expected values tests nothing"
    for key, expected in case["expected"].items():
        tol = tolerances.get(key, DEFAULT_TOLERANCE)
        for got in _compute(case, key):
            assert got == pytest.approx(expected, abs=tol), f"{case['id']}: {key}"


# ---- edge cases ------------------------------------------------------------------------


def _edge_one_category() -> None:
    one: Matrix = [[2, 2, 2, None], [2, 2, None, 2], [2, None, 2, 2]]
    for level in LEVELS:
        result = krippendorff_alpha(one, level)
        assert result.value is None
        assert result.reason == "every rating is in one category: expected disagreement is 0"
    for coefficient in (
        fleiss_kappa([[2, 2, 2], [2, 2, 2]]),
        cohen_kappa(one[0], one[1]),
        weighted_cohen_kappa(one[0], one[1], "quadratic"),
        mean_pairwise_cohen_kappa(one),
        fleiss_kappa_from_counts([[3], [3], [3]]),
        cohen_kappa_from_confusion([[0, 0], [0, 7]]),
    ):
        assert coefficient.value is None, coefficient
        assert "one category" in str(coefficient.reason)
    sets: list[list[frozenset[str] | None]] = [
        [frozenset({"a"}), frozenset({"a"})],
        [frozenset({"a"}), None],
    ]
    assert krippendorff_alpha_set(sets).value is None
    assert percent_agreement(one).value == 1.0
    assert unit_agreement([[3], [2]]) == [1.0, 1.0]


def _edge_single_rater_units() -> None:
    base: Matrix = [[1, 2, 3, 1, 2], [1, 2, 2, 1, 3], [1, 3, 3, None, 2]]
    lonely: Matrix = [[*base[0], 4, None], [*base[1], None, None], [*base[2], None, 5]]
    for level in LEVELS:
        a = krippendorff_alpha(base, level)
        b = krippendorff_alpha(lonely, level)
        # Values 4 and 5 only occur in single-rater units: were they kept, they would enter
        # the expected disagreement and change every level's alpha.
        assert b.value == pytest.approx(_value(a), abs=1e-12)
        assert (b.n_units, b.n_units_dropped_single_rater) == (5, 2)
        assert b.n_ratings == a.n_ratings == 14
    assert _value(fleiss_kappa(lonely[:2])) == pytest.approx(_value(fleiss_kappa(base[:2])))


def _edge_missing_not_a_category() -> None:
    # Each missing marker (None, NaN, -1 in a code matrix) must give the same result as
    # removing the rating, and must never show up among the categories.
    with_none: Matrix = [[1, 1, 2, None], [1, 1, 2, 2], [None, 1, 2, 2]]
    with_nan = np.array(with_none, dtype=float)
    codes = np.array([[1, 1, 2, -1], [1, 1, 2, 2], [-1, 1, 2, 2]])
    alphas = {krippendorff_alpha(d).value for d in (with_none, with_nan, codes)}
    assert alphas == {1.0}  # were "missing" a category, units 0 and 3 would disagree
    assert count_table(with_none).categories == (1, 2)
    assert count_table(with_nan).counts.sum() == 10
    assert krippendorff_alpha(with_none).n_ratings == 10


def _edge_item_identity() -> None:
    # The unit key is the whole (dialogue, turn, dimension) triple: rows sharing a dialogue
    # and turn but not the dimension, or a dialogue and dimension but not the turn, stay apart.
    rows = [
        (("d1", "t1", "emotion"), "ann1", "sad"),
        (("d1", "t1", "emotion"), "ann2", "sad"),
        (("d1", "t2", "emotion"), "ann1", "angry"),
        (("d1", "t2", "emotion"), "ann2", "sad"),
        (("d1", "t1", "strategy"), "ann1", "question"),
        (("d2", "t1", "emotion"), "ann1", "sad"),
    ]
    table = pivot_ratings(rows)
    columns = {unit: list(table.matrix[:, i]) for i, unit in enumerate(table.units)}
    assert columns == {
        ("d1", "t1", "emotion"): ["sad", "sad"],
        ("d1", "t2", "emotion"): ["angry", "sad"],
        ("d1", "t1", "strategy"): ["question", None],
        ("d2", "t1", "emotion"): ["sad", None],
    }
    emotion = [i for i, unit in enumerate(table.units) if "emotion" in str(unit)]
    result = krippendorff_alpha(table.matrix[:, emotion])
    # Pooled per dialogue, d1 would be one unit of four ratings and d2 a lone rating.
    assert (result.n_units, result.n_units_dropped_single_rater) == (2, 1)
    assert result.n_ratings == 4
    with pytest.raises(ValueError, match="more than once"):
        pivot_ratings([*rows, (("d1", "t1", "emotion"), "ann1", "happy")])


EDGE_CHECKS: dict[str, Callable[[], None]] = {
    "All ratings in one category": _edge_one_category,
    "Units rated by a single rater": _edge_single_rater_units,
    "Missing ratings are omitted": _edge_missing_not_a_category,
    "Item identity is": _edge_item_identity,
}


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_case(text: str) -> None:
    checks = [check for prefix, check in EDGE_CHECKS.items() if text.startswith(prefix)]
    assert len(checks) == 1, f"no test for edge case: {text!r}"
    checks[0]()
