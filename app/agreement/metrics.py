"""Inter-annotator agreement metrics: the public API.

Pure numpy, no database. Input is a reliability data matrix of shape (raters, units):

* floats with NaN for a missing rating (numeric scales),
* integer category codes with -1 for missing (nominal data straight from SQL ids),
* nested lists / object arrays with None for missing (labels of any hashable type),
* for multi-label dimensions, one set of labels (or None) per (rater, unit).

Every coefficient comes back as a :class:`Coefficient`: an undefined coefficient has value
None and a reason, never 0, 1 or NaN. Units with fewer than two ratings are left out and
counted; missing ratings are omitted, never treated as a category.
"""

from app.agreement.metrics_alpha import (
    bootstrap_alpha_ci,
    bootstrap_alpha_set_ci,
    krippendorff_alpha,
    krippendorff_alpha_from_counts,
    krippendorff_alpha_set,
    set_distance_matrix,
)
from app.agreement.metrics_encode import (
    RatingMatrix,
    RatingVector,
    SetMatrix,
    count_table,
    pivot_ratings,
)
from app.agreement.metrics_kappa import (
    cohen_kappa,
    cohen_kappa_from_confusion,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    mean_pairwise_cohen_kappa,
    percent_agreement,
    unit_agreement,
    weighted_cohen_kappa,
)
from app.agreement.metrics_raters import (
    confusion_matrix,
    majority_confusion_matrix,
    majority_labels,
    pairwise_matrix,
    per_label_agreement,
    rater_agreement,
)
from app.agreement.metrics_types import (
    Coefficient,
    ConfidenceInterval,
    ConfusionMatrix,
    CountTable,
    KappaWeights,
    LabelAgreement,
    Level,
    PairStatistic,
    RaterAgreement,
    RatingTable,
    SetDistance,
)

__all__ = [
    "Coefficient",
    "ConfidenceInterval",
    "ConfusionMatrix",
    "CountTable",
    "KappaWeights",
    "LabelAgreement",
    "Level",
    "PairStatistic",
    "RaterAgreement",
    "RatingMatrix",
    "RatingTable",
    "RatingVector",
    "SetDistance",
    "SetMatrix",
    "bootstrap_alpha_ci",
    "bootstrap_alpha_set_ci",
    "cohen_kappa",
    "cohen_kappa_from_confusion",
    "confusion_matrix",
    "count_table",
    "fleiss_kappa",
    "fleiss_kappa_from_counts",
    "krippendorff_alpha",
    "krippendorff_alpha_from_counts",
    "krippendorff_alpha_set",
    "majority_confusion_matrix",
    "majority_labels",
    "mean_pairwise_cohen_kappa",
    "pairwise_matrix",
    "per_label_agreement",
    "percent_agreement",
    "pivot_ratings",
    "rater_agreement",
    "set_distance_matrix",
    "unit_agreement",
    "weighted_cohen_kappa",
]
