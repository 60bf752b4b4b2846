"""Token and sentence metrics of the token-score protocol (README, "Token-score protocol").

Tie rules, fixed here once:

* top_k: a sentence's top_k words are ``np.argsort(-s, kind="stable")[:top_k]``, i.e. equal scores
  rank by position in the sentence (the earlier word wins).
* calibrate_threshold: among thresholds reaching the maximal F1 the HIGHEST is returned (fewest
  positives).
* MAP: ``sentence_average_precision`` (the one implementation, also behind the head scan) is, per
  sentence, ``sklearn.metrics.average_precision_score(labels, np.maximum(score, 0))`` up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from zs_core.errors import InputError

__all__ = ["calibrate_threshold", "sentence_metrics", "f_beta", "pearson", "flatten", "counts_at",
           "sentence_average_precision", "mean_average_precision"]


def f_beta(tp: int, fp: int, fn: int, beta: float) -> float:
    """F-beta from counts: (1+b^2) tp / ((1+b^2) tp + b^2 fn + fp); 0.0 when undefined."""
    b2 = float(beta) ** 2
    num = (1.0 + b2) * tp
    den = num + b2 * fn + fp
    return float(num / den) if den > 0 else 0.0


def flatten(
    labels: Sequence[Sequence[int]], scores: Sequence[Sequence[float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate and flatten to (labels, scores, sentence id) arrays plus the sentence count."""
    if len(labels) != len(scores):
        raise InputError(f"labels have {len(labels)} sentences but scores have {len(scores)}")
    lengths = np.zeros(len(labels), dtype=np.int64)
    for i, (lab, sco) in enumerate(zip(labels, scores)):
        if len(lab) != len(sco):
            raise InputError(f"sentence {i}: {len(lab)} labels but {len(sco)} scores")
        lengths[i] = len(lab)
    n_sent = len(labels)
    if lengths.sum() == 0:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty.astype(np.int64), n_sent
    y = np.concatenate([np.asarray(lab, dtype=np.float64).ravel() for lab in labels])
    s = np.concatenate([np.asarray(sco, dtype=np.float64).ravel() for sco in scores])
    sid = np.repeat(np.arange(n_sent, dtype=np.int64), lengths)
    bad = ~np.isfinite(s)
    if bad.any():
        i = int(sid[np.argmax(bad)])
        raise InputError(f"sentence {i}: score is NaN or infinite")
    bad = (y != 0) & (y != 1)
    if bad.any():
        i = int(sid[np.argmax(bad)])
        raise InputError(f"sentence {i}: labels must be 0 or 1")
    return y.astype(np.int64), s, sid, n_sent


def _check_top_k(top_k: int) -> int:
    """top_k must be a non-negative int (0 = no limit)."""
    k = int(top_k)
    if k < 0 or k != top_k:
        raise InputError(f"top_k must be a non-negative integer, got {top_k!r}")
    return k


def _in_top_k(s: np.ndarray, sid: np.ndarray, top_k: int) -> np.ndarray:
    """Mask of words among their sentence's top_k scores (stable descending sort; all if top_k=0)."""
    if top_k <= 0 or s.size == 0:
        return np.ones(s.size, dtype=bool)
    order = np.argsort(-s, kind="stable")
    order = order[np.argsort(sid[order], kind="stable")]  # by sentence, then score desc, then position
    sid_o = sid[order]
    new = np.ones(s.size, dtype=bool)
    new[1:] = sid_o[1:] != sid_o[:-1]
    start = np.maximum.accumulate(np.where(new, np.arange(s.size), 0))
    rank = np.arange(s.size) - start
    mask = np.zeros(s.size, dtype=bool)
    mask[order] = rank < top_k
    return mask


def sentence_average_precision(scores: np.ndarray, y: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's average precision of max(score, 0) per sentence, for every head at once.

    scores [B, N, W] (N heads), y [B, W] 0/1, valid [B, W]. Returns (ap [B, N] float64, has_positive [B]).
    AP = sum over positives of the precision at the last word of its tie group, / positives.
    """
    width = scores.shape[-1]
    s = np.where(valid[:, None, :], np.maximum(scores, 0.0), -1.0)             # padding sorts last
    order = np.argsort(-s, axis=-1, kind="stable")                             # [B, N, W]
    s_sorted = np.take_along_axis(s, order, -1)
    y_sorted = np.take_along_axis(np.broadcast_to(y[:, None, :], s.shape), order, -1)
    rank = np.arange(1, width + 1)
    precision = np.cumsum(y_sorted, -1) / rank                                 # [B, N, W]
    end = np.ones(s.shape, dtype=bool)                                         # last word of a tie group
    end[..., :-1] = s_sorted[..., 1:] != s_sorted[..., :-1]
    group_end = np.minimum.accumulate(np.where(end, rank - 1, width)[..., ::-1], -1)[..., ::-1]
    n_pos = y.sum(-1)                                                          # [B]
    ap = (y_sorted * np.take_along_axis(precision, group_end, -1)).sum(-1) / np.maximum(n_pos, 1)[:, None]
    return ap, n_pos > 0


def mean_average_precision(labels: Sequence[Sequence[int]], scores: Sequence[Sequence[float]]) -> float:
    """Mean over sentences with a positive word of ``sentence_average_precision`` (0.0 when there is none)."""
    width = max((len(x) for x in labels), default=0)
    if width == 0:
        return 0.0
    y = np.zeros((len(labels), width), dtype=np.int64)
    s = np.zeros((len(labels), 1, width), dtype=np.float64)
    valid = np.zeros((len(labels), width), dtype=bool)
    for row, (lab, sco) in enumerate(zip(labels, scores)):
        y[row, : len(lab)], s[row, 0, : len(sco)], valid[row, : len(lab)] = lab, sco, True
    ap, has = sentence_average_precision(s, y, valid)
    return float(ap[has, 0].mean()) if has.any() else 0.0


def pearson(y: np.ndarray, s: np.ndarray) -> float:
    """The seed's ``corr``: Pearson correlation of gold (0/1) and max(score, 0) over all words; 0.0 when
    either side is constant (or there are no words)."""
    c = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or np.ptp(y) == 0 or np.ptp(c) == 0:
        return 0.0
    return float(np.corrcoef(y, c)[0, 1])


def counts_at(y: np.ndarray, s: np.ndarray, sid: np.ndarray, threshold: float, top_k: int = 0) -> dict:
    """Micro precision, recall, F1, F0.5 of ``flatten``'s arrays at one threshold (and top_k)."""
    pred = (s >= threshold) & _in_top_k(s, sid, top_k)
    truth = y == 1
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return {
        "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        "f1": f_beta(tp, fp, fn, 1.0),
        "f05": f_beta(tp, fp, fn, 0.5),
    }


def calibrate_threshold(
    labels: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
    top_k: int = 0,
) -> float:
    """Threshold maximising token F1; candidates are the distinct scores, O(n log n).

    With top_k > 0 only words inside their sentence's top_k can be predicted, so the candidates
    are their distinct scores (any other threshold predicts the same set as the next higher
    candidate). Ties in F1: the highest threshold wins (fewest positives).
    """
    k = _check_top_k(top_k)
    y, s, sid, _ = flatten(labels, scores)
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0:
        raise InputError("no positive token in the calibration split: no threshold can be calibrated")
    keep = _in_top_k(s, sid, k)
    s_k, y_k = s[keep], y[keep]
    order = np.argsort(-s_k, kind="stable")
    s_o, y_o = s_k[order], y_k[order]
    tp = np.cumsum(y_o)
    n_pred = np.arange(1, s_o.size + 1)
    last = np.ones(s_o.size, dtype=bool)  # last word of each distinct score: counts at threshold
    last[:-1] = s_o[1:] != s_o[:-1]
    f1 = 2.0 * tp[last] / (n_pred[last] + n_pos)  # = 2tp / (2tp + fp + fn), as f_beta
    return float(s_o[last][int(np.argmax(f1))])  # argmax: first = highest threshold


def sentence_metrics(
    labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5
) -> dict:
    """Sentence precision/recall/F1/accuracy; a sentence is positive when score >= threshold."""
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size != s.size:
        raise InputError(f"{y.size} sentence labels but {s.size} sentence scores")
    if not np.isfinite(s).all():
        raise InputError(f"sentence {int(np.argmax(~np.isfinite(s)))}: score is NaN or infinite")
    if ((y != 0) & (y != 1)).any():
        raise InputError(f"sentence {int(np.argmax((y != 0) & (y != 1)))}: label must be 0 or 1")
    if y.size == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0}
    pred = (s >= threshold).astype(np.int64)
    p, r, f, _ = precision_recall_fscore_support(
        y, pred, average="binary", pos_label=1, zero_division=0
    )
    return {
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "accuracy": float(accuracy_score(y, pred)),
    }
