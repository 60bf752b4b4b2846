"""One result schema for every method's word scores (README, "Token-score protocol"; names in zs_core.protocol).

A method's scores on the reported split become tidy rows, ``ROW_KEYS``: one at the fixed threshold
(``threshold_kind`` "fixed") and one at the threshold that maximises token F1 on dev ("dev_calibrated"),
for each score set: one for a method with a score list per sentence (``ListScores``: soft attention, LIME,
IG, random), one per pooling x layer x head for a head scan (``headscan.HeadAccumulator``). Both scorers
answer the same questions (calibrate, metrics_at, map, auroc, corr, where), so ``method_rows`` is the one
function that turns either into rows. ``wide`` flattens rows into a leaderboard's columns by one naming
rule, ``split_metrics`` gives a trained model's columns for one split, and ``random_scores`` is the one random
floor, the same for a sentence in every output.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from zs_core.metrics import calibrate_threshold, counts_at, flatten, mean_average_precision, pearson, sentence_metrics
from zs_core.protocol import (
    AT_THRESHOLD,
    DEV_CALIBRATED,
    FIXED,
    LOSS,
    N_SENTENCES,
    RANDOM,
    THRESHOLD_FREE,
    TOK_CAL_THRESHOLD,
    on_dev,
    on_test,
    sent,
    tok,
    words_sent,
)

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

    def score_sets(self) -> list[dict]:
        return [{"layer": None, "head": None, "pooling": None}]


def method_rows(method: str, split, fixed: float | None = 0.5, dev_thresholds: np.ndarray | None = None) -> list[dict]:
    """Rows of ``split`` (a ListScores or a HeadAccumulator): at ``fixed`` and at ``dev_thresholds`` (what
    ``dev.calibrate()`` gave on dev; None: no calibrated rows), each kind for every score set."""
    common = {k: getattr(split, k)().ravel() for k in THRESHOLD_FREE}
    kinds = []
    if fixed is not None:
        kinds.append((FIXED, np.full(common["map"].shape, float(fixed))))
    if dev_thresholds is not None:
        kinds.append((DEV_CALIBRATED, np.asarray(dev_thresholds, dtype=np.float64).ravel()))
    rows = []
    for kind, thresholds in kinds:
        at = {k: v.ravel() for k, v in split.metrics_at(thresholds).items()}
        for i, where in enumerate(split.score_sets()):
            rows.append({"method": method, **where, "threshold_kind": kind, "threshold": float(thresholds[i]),
                         **{k: float(at[k][i]) for k in AT_THRESHOLD},
                         **{k: float(v[i]) for k, v in common.items()}, N_SENTENCES: int(split.n_sentences)})
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
        out.update({prefix + tok(k, cal): row[k] for k in AT_THRESHOLD})
        if cal:
            out[prefix + TOK_CAL_THRESHOLD] = row["threshold"]
        out.update({prefix + tok(k): row[k] for k in THRESHOLD_FREE})
    return out


def split_metrics(method: str, sentences: Sequence, probs: Sequence[float], words: Sequence[Sequence[float]] | None,
                  threshold: float = 0.5, top_k: int = 0, loss: float = float("nan"),
                  dev_threshold: float | None = None, calibrate: bool = True) -> dict[str, float]:
    """One split's columns (``protocol.split_keys``) for a trained model: sentence metrics at 0.5, the loss,
    and with word scores the token rows at ``threshold`` and dev-calibrated, and the words' own sentence
    decision (a sentence is positive when a word scores >= ``threshold``).

    ``dev_threshold=None, calibrate=True`` calibrates on these very sentences (dev); to score test pass
    dev's threshold and ``calibrate=False`` (test never picks its own threshold).
    """
    labels = [s.label for s in sentences]
    out = {sent(k): v for k, v in sentence_metrics(labels, probs).items()}
    out[LOSS] = loss
    out[N_SENTENCES] = len(sentences)
    if words is None:
        return out
    decided = [max(w, default=0.0) for w in words]
    out.update({words_sent(k): v for k, v in sentence_metrics(labels, decided, threshold).items()})
    gold = [list(s.gold) for s in sentences]
    dev_pair = (gold, words) if dev_threshold is None and calibrate else None
    rows = list_rows(method, gold, words, dev=dev_pair, fixed=threshold, top_k=top_k, dev_threshold=dev_threshold)
    return {**out, **wide(rows, "")}


def random_baseline(splits: dict[str, Sequence], threshold: float = 0.5, top_k: int = 0) -> dict[str, float]:
    """The random floor's dev/* and test/* columns (``random_scores``); test at dev's calibrated threshold; a split
    without labels (a test file with no label column) has no columns."""
    out: dict[str, float] = {}
    calibrated = None
    for prefix, name in ((on_dev(""), "dev"), (on_test(""), "test")):
        if not labelled(splits[name]):
            continue
        probs, words = random_scores(splits[name])
        metrics = split_metrics(RANDOM, splits[name], probs, words, threshold, top_k, dev_threshold=calibrated,
                                calibrate=name == "dev")
        calibrated = metrics.get(TOK_CAL_THRESHOLD)
        out.update({prefix + k: v for k, v in metrics.items()})
    return out


def labelled(sentences: Sequence) -> bool:
    """Can this split be scored: does it hold sentences, each with its labels?"""
    return bool(sentences) and all(s.labels is not None for s in sentences)


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
