"""token_metrics: every token metric of one score list at one threshold, for tests to compare against (production
code scores through zs_core.evaluation)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zs_core.metrics import _check_top_k, counts_at, flatten, mean_average_precision, pearson


def token_metrics(
    labels: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
    threshold: float = 0.5,
    top_k: int = 0,
) -> dict:
    """Micro token precision/recall/F1/F0.5, MAP and Pearson ``corr`` over all sentences.

    A word is predicted positive when score >= threshold and, for top_k > 0, it is among the
    sentence's ``np.argsort(-s, kind="stable")[:top_k]`` (ties: the earlier word wins).
    """
    k = _check_top_k(top_k)
    y, s, sid, n_sent = flatten(labels, scores)
    return {
        **counts_at(y, s, sid, threshold, k),
        "map": mean_average_precision(labels, scores),
        "corr": pearson(y, s),
        "threshold": float(threshold),
        "top_k": k,
        "n_sentences": int(n_sent),
        "n_tokens": int(y.size),
        "n_positive": int(np.count_nonzero(y == 1)),
    }
