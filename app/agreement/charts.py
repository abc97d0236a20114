"""Geometry and colours of the dashboard's SVG charts (pure; the templates draw and escape).

Heatmap: raters x raters, Cohen's kappa per pair. Confusion: labels x labels counts for two
raters or a rater against the others' majority. Trend: alpha per import batch or week.
Every cell knows its drill-down link parameters; numbers also show on hover (<title>).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CELL = 44
SMALL_CELL = 26
MARGIN = 150  # room for the row/column names


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    size: int
    fill: str
    text: str
    tip: dict[str, Any]  # what the hover title says (the template words it)
    link: dict[str, str] | None  # drill-down query parameters, None: nothing to drill into

    @property
    def ink(self) -> str:
        return ink(self.fill)


def kappa_fill(value: float | None) -> str:
    """Blue for agreement, orange below chance, grey when undefined."""
    if value is None:
        return "#d9d9d9"
    if value >= 0:
        light = 96 - int(min(value, 1.0) * 56)
        return f"hsl(212, 70%, {light}%)"
    light = 92 - int(min(-value, 1.0) * 40)
    return f"hsl(28, 85%, {light}%)"


def count_fill(count: int, top: int, diagonal: bool) -> str:
    if count == 0:
        return "#ffffff"
    share = count / top if top else 0.0
    light = 94 - int(share * 52)
    return f"hsl({150 if diagonal else 0}, 55%, {light}%)"


def ink(fill: str) -> str:
    """Text colour readable on the fill (dark fills get white text)."""
    if fill.startswith("hsl("):
        light = int(fill.rsplit(",", 1)[1].strip(" %)"))
        return "#ffffff" if light < 55 else "#111111"
    return "#111111"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def heatmap(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    raters: list[str] = row["raters"]
    kappa = row["pairwise_cohen_kappa"]
    agreement = row["pairwise_agreement"]
    units = row["pairwise_units"]
    cells = []
    for i, a in enumerate(raters):
        for j, b in enumerate(raters):
            fill = kappa_fill(kappa[i][j]) if i != j else "#f2f2f2"
            tip = {"a": names.get(a, a), "b": names.get(b, b), "kappa": _fmt(kappa[i][j]),
                   "agreement": _fmt(agreement[i][j]), "units": units[i][j]}  # fmt: skip
            link = {"a": a, "b": b} if i != j and units[i][j] else None
            cells.append(Cell(MARGIN + j * CELL, MARGIN + i * CELL, CELL, fill,
                              "" if i == j else _fmt(kappa[i][j]), tip, link))  # fmt: skip
    size = MARGIN + len(raters) * CELL + 4
    return {"cells": cells, "width": size, "height": size, "cell": CELL, "margin": MARGIN,
            "names": [names.get(r, r) for r in raters]}  # fmt: skip


def confusion(
    row: dict[str, Any],
    a: str,
    b: str,
    names: dict[str, str],
    shown: Callable[[str], str] = str,
) -> dict[str, Any] | None:
    """Label x label counts of `a` (rows) against `b` (columns or "majority"); `shown` names
    a label value (the codebook's name in the page's language), links keep the value."""
    store = row["confusion"]
    sparse = store["majority"].get(a) if b == "majority" else store["pairs"].get(f"{a}|{b}")
    if sparse is None:
        return None
    labels: list[str] = row["labels"]
    used = sorted({r for r, _, _ in sparse} | {c for _, c, _ in sparse})
    where = {label_index: k for k, label_index in enumerate(used)}
    top = max((n for _, _, n in sparse), default=0)
    grid = {(r, c): n for r, c, n in sparse}
    cells = []
    for r in used:
        for c in used:
            n = grid.get((r, c), 0)
            tip = {"a": names.get(a, a), "row": shown(labels[r]), "b": names.get(b, b),
                   "col": shown(labels[c]), "n": n}  # fmt: skip
            link = {"a": a, "b": b, "row": labels[r], "col": labels[c]} if n else None
            cells.append(Cell(MARGIN + where[c] * SMALL_CELL, MARGIN + where[r] * SMALL_CELL,
                              SMALL_CELL, count_fill(n, top, r == c), str(n) if n else "",
                              tip, link))  # fmt: skip
    size = MARGIN + len(used) * SMALL_CELL + 4
    return {"cells": cells, "width": size, "height": size, "cell": SMALL_CELL,
            "margin": MARGIN, "labels": [shown(labels[i]) for i in used],
            "table": [[grid.get((r, c), 0) for c in used] for r in used]}  # fmt: skip


def trend(points: list[dict[str, Any]], width: int = 520, height: int = 180) -> dict[str, Any]:
    """A polyline of alpha per group on a -0.2..1 scale; undefined points are left out."""
    left, top, bottom = 40, 10, 30
    inner_w, inner_h = width - left - 10, height - top - bottom
    lo, hi = -0.2, 1.0

    def y_of(v: float) -> float:
        return top + (hi - max(lo, min(hi, v))) / (hi - lo) * inner_h

    step = inner_w / max(len(points) - 1, 1)
    marks = []
    for k, p in enumerate(points):
        x = left + (k * step if len(points) > 1 else inner_w / 2)
        value = p["alpha"]
        marks.append({"x": round(x, 1), "y": round(y_of(value), 1) if value is not None else None,
                      "group": str(p["group"]), "value": value, "n_units": p["n_units"],
                      "reason": p["undefined_reason"]})  # fmt: skip
    line = " ".join(f"{mk['x']},{mk['y']}" for mk in marks if mk["y"] is not None)
    grid = [{"y": round(y_of(v), 1), "label": f"{v:.1f}"} for v in (0.0, 0.667, 0.8, 1.0)]
    return {"width": width, "height": height, "marks": marks, "line": line, "grid": grid,
            "left": left, "right": width - 10, "bottom": height - bottom}  # fmt: skip
