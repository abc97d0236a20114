"""Result types and shared vocabulary of the agreement metrics."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Level = Literal["nominal", "ordinal", "interval", "ratio"]
SetDistance = Literal["masi", "jaccard"]
KappaWeights = Literal["linear", "quadratic"]
PairStatistic = Literal["agreement", "cohen_kappa"]

# Reasons are user-facing: the UI shows them next to an undefined coefficient.
NO_PAIRABLE_UNITS = "fewer than two raters on every unit"
NO_SHARED_UNITS = "the two raters share no rated unit"
NO_SHARED_WITH_OTHERS = "the rater shares no rated unit with another rater"
ONE_CATEGORY_ALPHA = "every rating is in one category: expected disagreement is 0"
ONE_CATEGORY_KAPPA = "every rating is in one category: expected agreement is 1"
UNEQUAL_RATERS = "units have different numbers of raters ({}): Fleiss' kappa needs the same number"
NO_DEFINED_PAIR = "no pair of raters has a defined Cohen's kappa"
SELF_PAIR = "a rater is not compared with themself"
NO_MAJORITY = "no unit has a majority label among the other raters"


@dataclass(frozen=True, slots=True)
class Coefficient:
    """An agreement coefficient, or the reason it is undefined, with the counts it rests on.

    ``value`` is None exactly when ``reason`` is set; an undefined coefficient is never
    reported as 0, 1 or NaN. ``observed``/``expected`` are agreement proportions for the
    kappa family and percent agreement (weighted agreement for weighted kappa), but
    disagreements D_o/D_e for Krippendorff's alpha (alpha = 1 - D_o / D_e).
    """

    value: float | None
    reason: str | None
    n_units: int  # units that entered the computation (>= 2 ratings)
    n_units_dropped_single_rater: int  # units with exactly one rating, left out
    n_raters: int | None  # raters with a rating in a used unit; None when unknown (count tables)
    n_ratings: int  # ratings in the used units
    observed: float | None = None
    expected: float | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            raise ValueError("a Coefficient has either a value or a reason, not both or neither")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"non-finite coefficient value {self.value!r}")

    @property
    def defined(self) -> bool:
        """True when the coefficient has a value."""
        return self.value is not None


@dataclass(frozen=True, slots=True)
class ConfidenceInterval:
    """Percentile bootstrap interval; ``low``/``high`` are None exactly when ``reason`` is set."""

    low: float | None
    high: float | None
    reason: str | None
    confidence: float
    n_boot: int
    n_boot_undefined: int  # resamples whose alpha was undefined (left out of the percentiles)
    seed: int


@dataclass(frozen=True, slots=True)
class CountTable:
    """Ratings per (unit, category): ``counts[u, k]`` raters put unit u in ``categories[k]``."""

    categories: tuple[Hashable, ...]
    counts: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ConfusionMatrix:
    """``counts[i, j]``: shared units labelled ``labels[i]`` by the row rater, ``labels[j]`` by
    the column rater (or the majority)."""

    labels: tuple[Hashable, ...]
    counts: NDArray[np.int64]
    n_units_skipped: int  # units the row rater rated but the column side did not (or tied)


@dataclass(frozen=True, slots=True)
class RaterAgreement:
    """How one rater (row index ``rater``) agrees with the others."""

    rater: int
    with_others: Coefficient  # mean share of the other raters agreeing, per shared unit
    with_majority: Coefficient  # share of units where the rater matches the others' plurality
    kappa_with_majority: Coefficient  # Cohen's kappa of the rater against that plurality label
    mean_kappa_with_others: Coefficient  # mean Cohen's kappa over the other raters
    n_units_majority_tied: int  # shared units left out of the majority stats: others tied


@dataclass(frozen=True, slots=True)
class LabelAgreement:
    """One-vs-rest agreement on one label of a multi-label dimension ("has label" vs not)."""

    label: str
    n_positive: int  # ratings (any unit) that include the label
    alpha: Coefficient  # binary nominal Krippendorff's alpha
    mean_kappa: Coefficient  # mean pairwise Cohen's kappa
    percent_agreement: Coefficient


@dataclass(frozen=True, slots=True)
class RatingTable:
    """A (raters, units) matrix pivoted from long rows; ``matrix[r, u]`` is None when missing."""

    raters: tuple[Hashable, ...]
    units: tuple[Hashable, ...]
    matrix: NDArray[np.object_]
