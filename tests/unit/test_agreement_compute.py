"""The array pipeline (gathered arrays -> code matrix -> figures) against the metric functions
fed the same ratings the plain way, plus the chart geometry."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from app.agreement import charts, compute
from app.agreement import metrics as m
from app.agreement.gather import NO_WEEK, POSITION_SPAN, SEP, RawRatings

LABELS = ["a", "b", "c", "d"]


def _random_raw(seed: int, multi: bool) -> tuple[RawRatings, list[list[frozenset[str] | None]]]:
    """Ratings of 4 raters on 40 units (some missing), and the same as a rater x unit grid."""
    rng = np.random.default_rng(seed)
    grid: list[list[frozenset[str] | None]] = [[None] * 40 for _ in range(4)]
    rows = []
    for u in range(40):
        truth = rng.choice(LABELS)
        for r in range(4):
            if rng.random() < 0.2:
                continue
            first = truth if rng.random() < 0.7 else rng.choice(LABELS)
            labels = {str(first)}
            if multi and rng.random() < 0.3:
                labels.add(str(rng.choice(LABELS)))
            grid[r][u] = frozenset(labels)
            # stored spellings differ in order and use an alias: "A" means "a"
            stored = sorted("A" if v == "a" and r == 1 else v for v in labels)[::-1]
            unit = (1000 + u // 3) * POSITION_SPAN + u % 3 + 1
            rows.append((unit, 7 + r, SEP.join(stored), 1 + u % 2, 2900 + u % 4))
    cols = list(zip(*rows, strict=True))
    raw = RawRatings(
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.int64),
        list(cols[2]),  # type: ignore[arg-type]
        np.array(cols[3], dtype=np.int64),
        np.array(cols[4], dtype=np.int64),
    )
    return raw, grid


@pytest.mark.parametrize("seed", range(5))
def test_single_label_figures_match_the_metric_functions(seed: int) -> None:
    raw, grid = _random_raw(seed, multi=False)
    data = compute.build(raw, LABELS, {"A": "a"}, multi_label=False)
    flat = [[next(iter(c)) if c else None for c in row] for row in grid]
    keep = [u for u in range(40) if any(row[u] is not None for row in flat)]
    flat = [[row[u] for u in keep] for row in flat]
    got = compute.figures(data, n_boot=50)
    assert got["raters"] == ["user:7", "user:8", "user:9", "user:10"]
    assert got["alpha"]["value"] == pytest.approx(m.krippendorff_alpha(flat).value, abs=1e-12)
    assert got["fleiss_kappa"]["value"] == m.fleiss_kappa(flat).value
    expected = m.mean_pairwise_cohen_kappa(flat).value
    assert got["mean_pairwise_cohen_kappa"]["value"] == pytest.approx(expected, abs=1e-12)
    assert got["percent_agreement"]["value"] == pytest.approx(m.percent_agreement(flat).value)
    pairs = m.pairwise_matrix(flat)
    assert got["pairwise_cohen_kappa"][0][1] == pytest.approx(pairs[0][1].value)
    # confusion of rater 0 against rater 3, in label space
    cm = m.confusion_matrix(flat[0], flat[3], LABELS)
    dense = np.zeros((4, 4), dtype=int)
    for r, c, n in got["confusion"]["pairs"]["user:7|user:10"]:
        dense[r, c] = n
    assert (dense == cm.counts).all()
    majority = m.majority_confusion_matrix(flat, 2, LABELS)
    dense[:] = 0
    for r, c, n in got["confusion"]["majority"]["user:9"]:
        dense[r, c] = n
    assert (dense == majority.counts).all()
    # disagreement drill-down: units whose ratings differ
    mixed = compute.disagreements(data)
    expected_units = [u for u in range(len(keep))
                      if len({v for v in (row[u] for row in flat) if v}) > 1
                      and sum(row[u] is not None for row in flat) >= 2]  # fmt: skip
    assert mixed.tolist() == expected_units


@pytest.mark.parametrize("seed", range(3))
def test_multi_label_alpha_uses_masi_on_the_canonical_sets(seed: int) -> None:
    raw, grid = _random_raw(seed, multi=True)
    data = compute.build(raw, LABELS, {"A": "a"}, multi_label=True)
    keep = [u for u in range(40) if any(row[u] is not None for row in grid)]
    sets = [[row[u] for u in keep] for row in grid]
    got = compute.figures(data, n_boot=50)
    assert got["distance"] == "MASI"
    assert got["alpha"]["value"] == pytest.approx(m.krippendorff_alpha_set(sets, "masi").value)
    per_label = m.per_label_agreement(sets, LABELS)
    for label in LABELS:
        expected = per_label[label].alpha.value
        assert got["per_label"][label]["alpha"]["value"] == pytest.approx(expected, abs=1e-12)
        assert got["per_label"][label]["n_positive"] == per_label[label].n_positive


def test_trend_groups_units_by_batch_and_week() -> None:
    raw, _ = _random_raw(1, multi=False)
    data = compute.build(raw, LABELS, {"A": "a"}, multi_label=False)
    trend = compute.figures(data, n_boot=10)["trend"]
    assert [p["group"] for p in trend["batch"]] == [1, 2]
    assert (
        sum(p["n_units"] for p in trend["batch"])
        == compute.figures(data, n_boot=10)["alpha"]["n_units"]
    )
    weeks = [(date(1970, 1, 5) + timedelta(weeks=w)).isoformat() for w in range(2900, 2904)]
    assert [p["group"] for p in trend["week"]] == weeks
    assert NO_WEEK not in data.unit_week.tolist()


def test_chart_geometry_colours_and_links() -> None:
    assert charts.kappa_fill(None) == "#d9d9d9"
    assert charts.kappa_fill(1.0) == "hsl(212, 70%, 40%)"
    assert charts.ink("hsl(212, 70%, 40%)") == "#ffffff"
    assert charts.kappa_fill(-0.5).startswith("hsl(28,")
    row = {"raters": ["user:1", "user:2"], "pairwise_cohen_kappa": [[None, 0.5], [0.5, None]],
           "pairwise_agreement": [[None, 0.8], [0.8, None]], "pairwise_units": [[0, 10], [10, 0]],
           "labels": ["x", "y", "z"],
           "confusion": {"majority": {"user:1": [[0, 0, 3], [0, 2, 1]]}, "pairs": {}}}  # fmt: skip
    h = charts.heatmap(row, {"user:1": "Ann"})
    assert [c.link for c in h["cells"]] == [None, {"a": "user:1", "b": "user:2"},
                                            {"a": "user:2", "b": "user:1"}, None]  # fmt: skip
    assert h["cells"][1].tip["a"] == "Ann"
    assert h["cells"][1].text == "0.50"
    cm = charts.confusion(row, "user:1", "majority", {})
    assert cm is not None
    assert cm["labels"] == ["x", "z"]
    assert cm["table"] == [[3, 1], [0, 0]]
    assert charts.confusion(row, "user:1", "user:2", {}) is None  # pair matrices not kept
    points = [{"group": 1, "alpha": 0.5, "undefined_reason": None, "n_units": 3},
              {"group": 2, "alpha": None, "undefined_reason": "why", "n_units": 1}]  # fmt: skip
    t = charts.trend(points)
    assert t["line"].count(",") == 1  # the undefined point is not drawn
