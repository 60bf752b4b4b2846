"""Token and sentence metrics of the token-score protocol (see DESIGN.md, "Token-score protocol").

Tie rules, fixed here once:

* top_k: a sentence's top_k words are ``np.argsort(-s, kind="stable")[:top_k]``, i.e. equal scores
  rank by position in the sentence (the earlier word wins).
* calibrate_threshold: among thresholds reaching the maximal F1 the HIGHEST is returned (fewest
  positives).
* MAP is computed vectorised over all sentences; it equals a loop of
  ``sklearn.metrics.average_precision_score(labels, np.maximum(score, 0))`` up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from zs_core.errors import InputError

__all__ = ["token_metrics", "calibrate_threshold", "sentence_metrics", "f_beta", "pearson"]


def f_beta(tp: int, fp: int, fn: int, beta: float) -> float:
    """F-beta from counts: (1+b^2) tp / ((1+b^2) tp + b^2 fn + fp); 0.0 when undefined."""
    b2 = float(beta) ** 2
    num = (1.0 + b2) * tp
    den = num + b2 * fn + fp
    return float(num / den) if den > 0 else 0.0


def _flatten(
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


def _mean_average_precision(y: np.ndarray, s: np.ndarray, sid: np.ndarray, n_sent: int) -> float:
    """Mean over sentences with a positive of sklearn-style average precision of max(score, 0)."""
    pos = np.bincount(sid, weights=y, minlength=n_sent)
    if y.size == 0 or not (pos > 0).any():
        return 0.0
    c = np.maximum(s, 0.0)
    order = np.lexsort((-c, sid))  # sentence ascending, score descending
    c_o, y_o, sid_o = c[order], y[order], sid[order]
    n = c_o.size
    idx = np.arange(n)
    new = np.ones(n, dtype=bool)
    new[1:] = sid_o[1:] != sid_o[:-1]
    start = np.maximum.accumulate(np.where(new, idx, 0))
    cum = np.cumsum(y_o)
    before = cum[start] - y_o[start]  # positives of earlier sentences
    # a distinct-score group ends where the sentence or the score changes
    end = np.ones(n, dtype=bool)
    end[:-1] = (sid_o[1:] != sid_o[:-1]) | (c_o[1:] != c_o[:-1])
    e = idx[end]
    tp_end = cum[e]
    tp_group = np.diff(np.concatenate(([0], tp_end)))
    tp_sent = tp_end - before[e]
    precision = tp_sent / (e - start[e] + 1)
    g_sid = sid_o[e]
    contrib = tp_group / np.maximum(pos[g_sid], 1.0) * precision
    ap = np.bincount(g_sid, weights=contrib, minlength=n_sent)
    return float(ap[pos > 0].mean())


def pearson(y: np.ndarray, s: np.ndarray) -> float:
    """The seed's ``corr``: Pearson correlation of gold (0/1) and max(score, 0) over all words; 0.0 when
    either side is constant (or there are no words)."""
    c = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or np.ptp(y) == 0 or np.ptp(c) == 0:
        return 0.0
    return float(np.corrcoef(y, c)[0, 1])


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
    y, s, sid, n_sent = _flatten(labels, scores)
    pred = (s >= threshold) & _in_top_k(s, sid, k)
    truth = y == 1
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return {
        "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        "f1": f_beta(tp, fp, fn, 1.0),
        "f05": f_beta(tp, fp, fn, 0.5),
        "map": _mean_average_precision(y, s, sid, n_sent),
        "corr": pearson(y, s),
        "threshold": float(threshold),
        "top_k": k,
        "n_sentences": int(n_sent),
        "n_tokens": int(y.size),
        "n_positive": int(np.count_nonzero(truth)),
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
    y, s, sid, _ = _flatten(labels, scores)
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
