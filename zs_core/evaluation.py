"""One result schema for every method's word scores (see DESIGN.md, "Token-score protocol").

A method's scores on the reported split become tidy rows, ``ROW_KEYS``: one at the fixed threshold
(``threshold_kind`` "fixed") and one at the threshold that maximises token F1 on dev ("dev_calibrated"),
for each score set: one for a method with a score list per sentence (``ListScores``: soft attention, LIME,
IG, random), one per pooling x layer x head for a head scan (``headscan.HeadAccumulator``). Both scorers
answer the same questions (calibrate, metrics_at, map, auroc, corr, where), so ``method_rows`` is the one
function that turns either into rows. ``wide`` flattens rows into a leaderboard's columns by one naming
rule, and ``random_scores`` is the one random floor, the same for a sentence in every output.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from zs_core.metrics import calibrate_threshold, counts_at, flatten, mean_average_precision, pearson

ROW_KEYS = ("method", "layer", "head", "pooling", "threshold_kind", "threshold", "precision", "recall", "f1",
            "f05", "map", "auroc", "corr", "n_sentences")
FIXED, DEV_CALIBRATED = "fixed", "dev_calibrated"
FINISHED = ("TERMINATED", "STOPPED_EARLY")  # a leaderboard's trial statuses that ran to the end or ASHA's stop
AT_THRESHOLD = ("precision", "recall", "f1", "f05")  # the metrics that depend on the threshold
RANDOM_SEED = 0  # the random floor: default_rng((RANDOM_SEED, crc32 of the sentence's words))


class ListScores:
    """One method's word-score lists against gold, scored exactly (one score set: arrays of shape [1])."""

    def __init__(self, golds: Sequence[Sequence[int]], scores: Sequence[Sequence[float]], top_k: int = 0):
        self.golds, self.scores, self.top_k = golds, scores, top_k
        self.y, self.s, self.sid, self.n_sentences = flatten(golds, scores)  # checked once, shared below

    def calibrate(self) -> np.ndarray:
        """The threshold maximising token F1 here (NaN when no word is positive)."""
        if not self.y.any():
            return np.array([np.nan])
        return np.array([calibrate_threshold(self.golds, self.scores, self.top_k)])

    def metrics_at(self, thresholds: np.ndarray) -> dict[str, np.ndarray]:
        t = float(np.asarray(thresholds).ravel()[0])
        if t != t:
            return {k: np.array([np.nan]) for k in AT_THRESHOLD}
        m = counts_at(self.y, self.s, self.sid, t, self.top_k)
        return {k: np.array([m[k]]) for k in AT_THRESHOLD}

    def map(self) -> np.ndarray:
        return np.array([mean_average_precision(self.golds, self.scores)])

    def corr(self) -> np.ndarray:
        return np.array([pearson(self.y, self.s)])

    def auroc(self) -> np.ndarray:
        return np.array([float(roc_auc_score(self.y, self.s)) if 0 < self.y.sum() < self.y.size else np.nan])

    def where(self) -> list[dict]:
        return [{"layer": None, "head": None, "pooling": None}]


def method_rows(method: str, split, fixed: float | None = 0.5, dev_thresholds: np.ndarray | None = None) -> list[dict]:
    """Rows of ``split`` (a ListScores or a HeadAccumulator): at ``fixed`` and at ``dev_thresholds`` (what
    ``dev.calibrate()`` gave on dev; None: no calibrated rows), each kind for every score set."""
    common = {"map": split.map().ravel(), "auroc": split.auroc().ravel(), "corr": split.corr().ravel()}
    kinds = []
    if fixed is not None:
        kinds.append((FIXED, np.full(common["map"].shape, float(fixed))))
    if dev_thresholds is not None:
        kinds.append((DEV_CALIBRATED, np.asarray(dev_thresholds, dtype=np.float64).ravel()))
    rows = []
    for kind, thresholds in kinds:
        at = {k: v.ravel() for k, v in split.metrics_at(thresholds).items()}
        for i, where in enumerate(split.where()):
            rows.append({"method": method, **where, "threshold_kind": kind, "threshold": float(thresholds[i]),
                         **{k: float(at[k][i]) for k in AT_THRESHOLD},
                         **{k: float(v[i]) for k, v in common.items()}, "n_sentences": int(split.n_sentences)})
    return rows


def list_rows(method: str, golds: Sequence[Sequence[int]], scores: Sequence[Sequence[float]],
              dev: tuple[Sequence[Sequence[int]], Sequence[Sequence[float]]] | None = None,
              fixed: float | None = 0.5, top_k: int = 0, dev_threshold: float | None = None) -> list[dict]:
    """``method_rows`` of word-score lists: calibrated on ``dev`` = (golds, scores), or at a ``dev_threshold``
    calibrated earlier (test never picks its own threshold); neither: the fixed row only."""
    split = ListScores(golds, scores, top_k)
    thresholds = None
    if dev is not None:  # dev may be the split itself (a training run's dev evaluation)
        thresholds = (split if dev[1] is scores else ListScores(*dev, top_k=top_k)).calibrate()
    elif dev_threshold is not None:
        thresholds = np.array([dev_threshold], dtype=np.float64)
    return method_rows(method, split, fixed, thresholds)


def wide(rows: Sequence[dict], prefix: str) -> dict[str, float]:
    """A leaderboard's columns from one method's rows: ``{prefix}tok_{metric}`` at the fixed threshold,
    ``{prefix}tok_cal_{metric}`` (and ``tok_cal_threshold``) at the dev-calibrated one; map, auroc, corr
    and n_sentences depend on no threshold."""
    out: dict[str, float] = {}
    for row in rows:
        cal = row["threshold_kind"] == DEV_CALIBRATED
        out.update({f"{prefix}tok_{'cal_' if cal else ''}{k}": row[k] for k in AT_THRESHOLD})
        if cal:
            out[f"{prefix}tok_cal_threshold"] = row["threshold"]
        out.update({f"{prefix}tok_{k}": row[k] for k in ("map", "auroc", "corr")})
    return out


def random_scores(sentences: Sequence) -> tuple[list[float], list[list[float]]]:
    """The random floor: (sentence probability, word scores) per sentence, uniform in [0, 1), drawn from
    default_rng((RANDOM_SEED, crc32 of the words)): the same sentence gets the same scores in every output,
    whatever the split, order or sample it comes in."""
    probs, words = [], []
    for sentence in sentences:
        key = zlib.crc32("\t".join(sentence.words).encode("utf-8"))
        draws = np.random.default_rng((RANDOM_SEED, key)).random(len(sentence.words) + 1)
        probs.append(float(draws[0]))
        words.append(draws[1:].tolist())
    return probs, words
