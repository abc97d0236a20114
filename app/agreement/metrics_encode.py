"""Encoding rating matrices into integer category codes and per-unit count tables.

Every metric works on a (raters, units) matrix of category codes (``MISSING`` where a rater
did not rate a unit) plus the tuple of categories the codes stand for. From it,
``unit_counts`` builds the compact (units, categories) count table that the SQL layer can
also produce directly with ``GROUP BY unit, value``.

Missing ratings, by input type:

* numpy float arrays: NaN;
* numpy integer arrays are code matrices: -1 (other negative values are rejected, so pass a
  scale such as -2..2 as floats with NaN);
* numpy object arrays and Python sequences (lists of rows): None or a float NaN; every other
  entry, -1 included, is a rating. Rows that are numpy arrays follow their dtype's rule.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.agreement.metrics_types import CountTable, RatingTable

# One rater's ratings over the units, and a (raters, units) matrix of them.
RatingVector = NDArray[Any] | Sequence[Hashable | None]
RatingMatrix = NDArray[Any] | Sequence[RatingVector]
# Multi-label data: one set of labels per (rater, unit), None when the rater did not rate it.
# An empty set is a real rating ("no label applies"), distinct from None.
SetMatrix = NDArray[np.object_] | Sequence[Sequence[Set[str] | None]]

MISSING = -1
# Dense (units x categories) tables are the fast path for rating scales; continuous ratings
# with very many distinct values would need a table too large to allocate.
_MAX_TABLE_CELLS = 60_000_000
_BINCOUNT_CODE_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class Encoded:
    """Category codes (raters, units), ``MISSING`` where unrated, and what each code means."""

    codes: NDArray[np.int64]
    categories: tuple[Hashable, ...]

    @property
    def n_categories(self) -> int:
        """Number of distinct categories."""
        return len(self.categories)


def encode_matrix(data: RatingMatrix, categories: Sequence[Hashable] | None = None) -> Encoded:
    """Encode a (raters, units) matrix; with ``categories``, codes index into that sequence."""
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"expected a (raters, units) matrix, got shape {data.shape}")
        encoded = _encode_array(data)
    else:
        encoded = encode_vectors(*data)
    return encoded if categories is None else recode(encoded, categories)


def encode_vectors(*rows: RatingVector) -> Encoded:
    """Encode equally long rating vectors (one per rater) into one code matrix."""
    if len({len(row) for row in rows}) > 1:
        raise ValueError("every rater needs one entry per unit")
    arrays = [row for row in rows if isinstance(row, np.ndarray)]
    if any(a.ndim != 1 for a in arrays):
        raise ValueError("rating vectors must be one-dimensional")
    if rows and len(arrays) == len(rows) and len({a.dtype.kind for a in arrays}) == 1:
        return _encode_array(np.stack(arrays))
    # Python rows, or arrays of mixed kinds (ints with -1 next to floats with NaN): each row's
    # own missing marker becomes None, so that it cannot turn into a category of another row.
    cells = [
        cell for row in rows for cell in (_as_objects(row) if isinstance(row, np.ndarray) else row)
    ]
    return _encode_objects(cells, (len(rows), len(rows[0]) if rows else 0))


def recode(encoded: Encoded, categories: Sequence[Hashable]) -> Encoded:
    """Re-express codes as positions in ``categories``, which must cover every rating."""
    index = {c: i for i, c in enumerate(categories)}
    if len(index) != len(categories):
        raise ValueError("categories must be distinct")
    missing = [c for c in encoded.categories if c not in index]
    if missing:
        raise ValueError(f"ratings {missing!r} are not among the given categories")
    lookup = np.array([index[c] for c in encoded.categories] or [0], dtype=np.int64)
    codes = np.where(encoded.codes >= 0, lookup[np.maximum(encoded.codes, 0)], MISSING)
    return Encoded(codes.astype(np.int64, copy=False), tuple(categories))


def encode_sets(data: SetMatrix) -> Encoded:
    """Encode a (raters, units) matrix of label sets; each distinct set becomes one category."""
    rows = [list(row) for row in data]
    if len({len(row) for row in rows}) > 1:
        raise ValueError("every rater row must have one entry per unit")
    lookup: dict[frozenset[str], int] = {}
    flat: list[int] = []
    for row in rows:
        for cell in row:
            if cell is None:
                flat.append(MISSING)
                continue
            if not isinstance(cell, Set):
                raise TypeError(f"multi-label ratings must be sets or None, got {cell!r}")
            flat.append(lookup.setdefault(frozenset(cell), len(lookup)))
    sets = list(lookup)
    order = sorted(range(len(sets)), key=lambda i: (len(sets[i]), sorted(sets[i])))
    codes = np.array(flat, dtype=np.int64).reshape(len(rows), len(rows[0]) if rows else 0)
    return _reorder(codes, sets, order)


def unit_counts(codes: NDArray[np.int64], n_categories: int) -> NDArray[np.int64]:
    """Count table (units, categories): how many raters put each unit in each category."""
    n_units = codes.shape[1]
    if n_units * n_categories > _MAX_TABLE_CELLS:
        raise ValueError(
            f"{n_units} units x {n_categories} distinct values is too large a table: "
            "bin continuous ratings into a scale first"
        )
    valid = codes >= 0
    flat = (codes + np.arange(n_units, dtype=np.int64) * n_categories)[valid]
    counts = np.bincount(flat, minlength=n_units * n_categories)
    return counts.reshape(n_units, n_categories).astype(np.int64, copy=False)


def count_table(data: RatingMatrix) -> CountTable:
    """Per-unit category counts of a (raters, units) matrix; missing ratings are not counted."""
    encoded = encode_matrix(data)
    return CountTable(encoded.categories, unit_counts(encoded.codes, encoded.n_categories))


def check_counts(counts: NDArray[Any] | Sequence[Sequence[int]]) -> NDArray[np.int64]:
    """Validate a (units, categories) table of non-negative integer counts."""
    arr = np.asarray(counts)
    if arr.ndim != 2:
        raise ValueError(f"expected a (units, categories) count table, got shape {arr.shape}")
    if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0):
        raise ValueError("count tables hold non-negative integers")
    return arr.astype(np.int64, copy=False)


def numeric_values(categories: Sequence[Hashable]) -> NDArray[np.float64]:
    """The categories as floats, for interval/ratio metrics and weighted kappa."""
    if not all(isinstance(c, numbers.Real) for c in categories):
        raise TypeError("this level of measurement needs numeric ratings")
    return np.array(categories, dtype=np.float64)


def pivot_ratings(rows: Iterable[tuple[Hashable, Hashable, Hashable | None]]) -> RatingTable:
    """Pivot long (unit, rater, value) rows into a (raters, units) matrix; None means missing.

    The unit key must be the full item identity, e.g. ``(dialogue_id, turn_id, dimension)``:
    rows are only ever pooled when their keys are equal. A rater rating one unit twice is an
    error rather than silently overwritten.
    """
    units: dict[Hashable, int] = {}
    raters: dict[Hashable, int] = {}
    cells: dict[tuple[int, int], Hashable] = {}
    for unit, rater, value in rows:
        key = (raters.setdefault(rater, len(raters)), units.setdefault(unit, len(units)))
        if key in cells:
            raise ValueError(f"rater {rater!r} rated unit {unit!r} more than once")
        if value is not None:
            cells[key] = value
    matrix = np.full((len(raters), len(units)), None, dtype=object)
    for (r, u), value in cells.items():
        matrix[r, u] = value
    return RatingTable(tuple(raters), tuple(units), matrix)


def _encode_array(arr: NDArray[Any]) -> Encoded:
    kind = arr.dtype.kind
    if kind == "f":
        valid = ~np.isnan(arr)
        if not np.isfinite(arr[valid]).all():
            raise ValueError("ratings must be finite (NaN marks a missing rating)")
        return _encode_sorted(arr, valid)
    if kind in "iub":
        return _encode_codes(arr.astype(np.int64, copy=False))
    if kind in "US":
        return _encode_sorted(arr, np.ones(arr.shape, dtype=bool))
    if kind == "O":
        return _encode_objects(arr.ravel().tolist(), (arr.shape[0], arr.shape[1]))
    raise TypeError(f"unsupported rating dtype {arr.dtype}")


def _encode_sorted(arr: NDArray[Any], valid: NDArray[np.bool_]) -> Encoded:
    codes = np.full(arr.shape, MISSING, dtype=np.int64)
    uniques, inverse = np.unique(arr[valid], return_inverse=True)
    codes[valid] = inverse
    return Encoded(codes, tuple(uniques.tolist()))


def _encode_codes(arr: NDArray[np.int64]) -> Encoded:
    valid = arr != MISSING
    values = arr[valid]
    if values.size and values.min() < 0:
        raise ValueError(
            "integer matrices use -1 for missing; pass scales with negative values as floats"
        )
    if values.size and values.max() >= _BINCOUNT_CODE_LIMIT:
        return _encode_sorted(arr, valid)
    # Linear-time compression of the used codes (np.unique would sort every rating).
    present = np.bincount(values) > 0
    lookup = np.cumsum(present) - 1
    codes = np.full(arr.shape, MISSING, dtype=np.int64)
    codes[valid] = lookup[values]
    return Encoded(codes, tuple(np.flatnonzero(present).tolist()))


def _is_missing(cell: object) -> bool:
    return cell is None or (isinstance(cell, float | np.floating) and math.isnan(cell))


def _encode_objects(cells: list[Any], shape: tuple[int, int]) -> Encoded:
    lookup: dict[Hashable, int] = {}
    flat = [
        MISSING if _is_missing(cell) else lookup.setdefault(cell, len(lookup)) for cell in cells
    ]
    labels = list(lookup)
    codes = np.array(flat, dtype=np.int64).reshape(shape)
    return _reorder(codes, labels, _sorted_order(labels))


def _sorted_order(labels: list[Hashable]) -> list[int]:
    # Sort numbers and strings for stable, readable category order; other label types
    # (tuples, mixed types) keep their order of first appearance.
    sortable = all(isinstance(x, numbers.Real) for x in labels) or all(
        isinstance(x, str) for x in labels
    )
    if not sortable:
        return list(range(len(labels)))
    keys: list[Any] = labels
    return sorted(range(len(keys)), key=keys.__getitem__)


def _reorder(codes: NDArray[np.int64], labels: Sequence[Hashable], order: list[int]) -> Encoded:
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    recoded = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(labels) else codes, MISSING)
    return Encoded(recoded.astype(np.int64, copy=False), tuple(labels[i] for i in order))


def _as_objects(arr: NDArray[Any]) -> list[object]:
    kind = arr.dtype.kind
    if kind in "iub":
        return [None if x == MISSING else x for x in arr.astype(np.int64).tolist()]
    return [None if _is_missing(x) else x for x in arr.tolist()]
