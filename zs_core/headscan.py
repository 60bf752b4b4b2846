"""Every attention head of an encoder, scored from one forward pass per batch and accumulated as it streams.

A ``HeadAccumulator`` keeps, per (pooling, layer, head), the sum of per-sentence average precisions and a
count, and two histograms (positive and negative words) over a fixed grid of candidate thresholds. Its
memory is 2 * P * L * H * (len(grid) + 1) int64 (11 MiB for minilm's 72 heads x 2 poolings), whatever the
number of sentences; it lives in numpy on the CPU (a GPU batch's word scores are copied over once).

* MAP: per sentence exactly ``sklearn.metrics.average_precision_score(gold, max(score, 0))`` (ties as
  sklearn: one step per distinct score), computed for all heads at once; mean over sentences with a
  positive word.
* Counts: a word is predicted at grid threshold t when score >= t. The grid holds 0, a geometric grid
  1e-6 .. 1 and a linear grid 0 .. 1 (attention is in [0, 1]); counts at grid thresholds are exact.
* Calibration: on dev the grid threshold maximising token F1 (ties: the highest); on the reported split
  the counts at that threshold are exact. Top-k limits are not used here (top_k = 0).
* corr: the seed's Pearson correlation of gold and max(score, 0) over all words, from running sums.
* AUROC: from the two histograms, scores in one grid bin counted as tied (half a pair each). Pairs in
  different bins are ordered exactly, so |auroc - exact auroc| <= 0.5 * sum_b pos_b * neg_b / (P * N),
  which ``auroc()`` returns beside it (0 when no bin holds both a positive and a negative word).

Batches (``length_batches``): at most ``batch_size`` sentences and at most MAX_CELLS attention cells per
map (B * T^2), so one batch's L x H attention maps have a bounded size; each time batches have grown
RELEASE_GROWTH times longer the freed heap is handed back to the OS (``release_freed_memory``). Peak memory then depends neither on the
number of sentences nor much on the longest one.

Methods with one score list per sentence (soft attention, the random floor) go through ``score_list_row``
instead: exact calibration over distinct scores and sklearn's AUROC, holding one float per word.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import Encoded, encode
from zs_core.data import Sentence
from zs_core.encoders import layer_head_counts
from zs_core.metrics import calibrate_threshold, f_beta, token_metrics
from zs_core.scores import POOLINGS, iter_head_scores

__all__ = ["threshold_grid", "sentence_average_precision", "HeadAccumulator", "length_batches",
           "encode_in_chunks", "scan_split", "scan_batch", "release_freed_memory", "head_rows", "score_list_row", "MAX_CELLS", "METRIC_KEYS"]

# Attention cells per map in one batch (B * T^2): 32 sentences of 64 pieces; at 128 pieces, 8 sentences.
MAX_CELLS = 32 * 64 * 64
RELEASE_GROWTH = 1.05  # release freed memory when batches got this much longer (each release costs page faults)
METRIC_KEYS = ("map", "f1", "precision", "recall", "f05", "threshold", "auroc", "corr", "n_sentences")


def threshold_grid(n_geometric: int = 4096, n_linear: int = 1025) -> np.ndarray:
    """Candidate thresholds, ascending: 0, geomspace(1e-6, 1, n_geometric) and linspace(0, 1, n_linear)."""
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, n_geometric), np.linspace(0.0, 1.0, n_linear)])
    return np.unique(grid)


def _gold_matrix(golds: Sequence[Sequence[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels [B, W] int64, valid [B, W] bool): word positions past a sentence's end are not valid."""
    y = np.zeros((len(golds), width), dtype=np.int64)
    valid = np.zeros((len(golds), width), dtype=bool)
    for row, gold in enumerate(golds):
        if len(gold) > width:
            raise ValueError(f"sentence {row}: {len(gold)} gold labels but only {width} word scores")
        y[row, : len(gold)] = gold
        valid[row, : len(gold)] = True
    return y, valid


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


class HeadAccumulator:
    """Streaming per-head MAP, threshold counts and AUROC for word scores [B, P, L, H, W] (numpy, on CPU)."""

    def __init__(self, n_pool: int, n_layers: int, n_heads: int, thresholds: np.ndarray | None = None):
        self.shape = (n_pool, n_layers, n_heads)
        self.n = n_pool * n_layers * n_heads
        grid = threshold_grid() if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0 or (np.diff(grid) <= 0).any():
            raise ValueError("thresholds must be a non-empty, strictly ascending 1-d array")
        self.thresholds = grid
        self._bins = grid.size + 1                                             # bin b: grid[b-1] <= s < grid[b]
        self._hist = np.zeros(self.n * self._bins * 2, dtype=np.int64)         # [N, K+1, neg/pos] flat
        self._ap_sum = np.zeros(self.n, dtype=np.float64)
        self._sums = np.zeros((5, self.n), dtype=np.float64)                 # words, sum c, c^2, c*y, y
        self.n_with_positive = 0
        self.n_sentences = 0

    def update(self, word_scores: torch.Tensor | np.ndarray, golds: Sequence[Sequence[int]]) -> None:
        """Add a batch: word_scores [B, P, L, H, W] (W >= every sentence's length), golds: B lists of 0/1."""
        if isinstance(word_scores, torch.Tensor):
            word_scores = word_scores.detach().cpu().numpy()
        b, p, l, h, w = word_scores.shape
        if (p, l, h) != self.shape or b != len(golds):
            raise ValueError(f"expected [{len(golds)}, {self.shape}, W] scores, got {word_scores.shape}")
        s = word_scores.reshape(b, self.n, w).astype(np.float64)               # [B, N, W]
        y, valid = _gold_matrix(golds, w)
        ap, has = sentence_average_precision(s, y, valid)
        self._ap_sum += ap[has].sum(0)
        self.n_with_positive += int(has.sum())
        self.n_sentences += b
        c = np.where(valid[:, None, :], np.maximum(s, 0.0), 0.0)              # [B, N, W]
        yc = y[:, None, :] * c
        self._sums[0] += valid.sum()
        self._sums[1:4] += np.stack([c.sum((0, 2)), (c * c).sum((0, 2)), yc.sum((0, 2))])
        self._sums[4] += y[valid].sum()
        bins = np.searchsorted(self.thresholds, s, side="right")               # [B, N, W] in 0..K
        head = np.arange(self.n)[None, :, None]
        flat = (head * self._bins + bins) * 2 + y[:, None, :]                  # [B, N, W]
        self._hist += np.bincount(flat[np.broadcast_to(valid[:, None, :], flat.shape)], minlength=self._hist.size)

    def _histogram(self) -> np.ndarray:
        return self._hist.reshape(self.n, self._bins, 2)

    def map(self) -> np.ndarray:
        """[P, L, H] mean AP over sentences with a positive word (0 when there is none)."""
        ap = self._ap_sum / max(self.n_with_positive, 1)
        return ap.reshape(self.shape)

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tp, fp, fn), each [N, K]: exact counts of score >= thresholds[j] per flattened head."""
        hist = self._histogram()
        at_or_above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]                 # [N, K+1, 2]: bins >= b
        tp, fp = at_or_above[:, 1:, 1], at_or_above[:, 1:, 0]
        return tp, fp, hist[:, :, 1].sum(1, keepdims=True) - tp

    def calibrate(self) -> np.ndarray:
        """[N] grid index of the threshold maximising token F1 (ties: the highest threshold)."""
        tp, fp, fn = self.counts()
        if not (tp[:, 0] + fn[:, 0]).any():
            raise ValueError("no positive token: no threshold can be calibrated")
        den = 2 * tp + fp + fn
        f1 = np.divide(2.0 * tp, den, out=np.zeros(tp.shape), where=den > 0)
        return f1.shape[1] - 1 - np.argmax(f1[:, ::-1], axis=1)

    def metrics_at(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Exact precision, recall, F1, F0.5 at grid threshold ``index[head]``; each [P, L, H]."""
        tp, fp, fn = self.counts()
        rows = np.arange(self.n)
        tp, fp, fn = tp[rows, index], fp[rows, index], fn[rows, index]
        out = {
            "precision": [t / (t + f) if t + f else 0.0 for t, f in zip(tp, fp)],
            "recall": [t / (t + f) if t + f else 0.0 for t, f in zip(tp, fn)],
            "f1": [f_beta(int(t), int(p), int(n), 1.0) for t, p, n in zip(tp, fp, fn)],
            "f05": [f_beta(int(t), int(p), int(n), 0.5) for t, p, n in zip(tp, fp, fn)],
            "threshold": self.thresholds[index],
        }
        return {k: np.asarray(v, dtype=np.float64).reshape(self.shape) for k, v in out.items()}

    def corr(self) -> np.ndarray:
        """[P, L, H] Pearson correlation of gold (0/1) and max(score, 0); 0 where either is constant."""
        n, sc, scc, scy, sy = self._sums
        cov = scy - sc * sy / np.maximum(n, 1)
        var_c, var_y = scc - sc * sc / np.maximum(n, 1), sy - sy * sy / np.maximum(n, 1)   # y^2 = y
        den = np.sqrt(np.clip(var_c, 0, None) * np.clip(var_y, 0, None))
        out = np.divide(cov, den, out=np.zeros(self.n), where=den > 1e-12 * np.maximum(n, 1))
        return out.reshape(self.shape)

    def auroc(self) -> tuple[np.ndarray, np.ndarray]:
        """(auroc, error bound), each [P, L, H]; NaN where the split lacks positive or negative words."""
        hist = self._histogram().astype(np.float64)
        neg, pos = hist[:, :, 0], hist[:, :, 1]
        pairs = neg.sum(1) * pos.sum(1)
        above = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1] - pos                   # positives in higher bins
        won = (neg * (above + 0.5 * pos)).sum(1)
        tied = 0.5 * (neg * pos).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc, bound = np.where(pairs > 0, won / pairs, np.nan), np.where(pairs > 0, tied / pairs, np.nan)
        return auc.reshape(self.shape), bound.reshape(self.shape)


def length_batches(items: Sequence[Encoded], batch_size: int, max_cells: int | None = MAX_CELLS) -> list[list[int]]:
    """Indices by length, cut into batches of at most ``batch_size`` sentences and, when ``max_cells`` is
    set, at most max_cells attention cells per map (B * T^2 for B sentences padded to T pieces): every
    batch's L x H attention maps then have a bounded size, whatever the sentence lengths."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    out: list[list[int]] = []
    for i in order:
        t = len(items[i].input_ids)
        if not out or len(out[-1]) >= batch_size or (max_cells and (len(out[-1]) + 1) * t * t > max_cells):
            out.append([])
        out[-1].append(i)
    return out


def encode_in_chunks(sentences: Sequence[Sentence], tokenizer: PreTrainedTokenizerBase, max_seq_length: int,
                     lowercase: bool = False, chunk: int = 1024) -> tuple[list[Encoded], int]:
    """``batching.encode`` a chunk at a time, so the tokenizer's buffers for one call stay small."""
    items: list[Encoded] = []
    cut = 0
    for start in range(0, len(sentences), chunk):
        part, n = encode(sentences[start : start + chunk], tokenizer, max_seq_length, lowercase=lowercase)
        items += part
        cut += n
    return items, cut


def scan_split(encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: Sequence[Encoded],
               golds: Sequence[Sequence[int]], batch_size: int, device: torch.device | str = "cpu",
               poolings: Sequence[str] = POOLINGS, thresholds: np.ndarray | None = None,
               on_batch: Callable[[int], None] | None = None, max_cells: int | None = MAX_CELLS) -> HeadAccumulator:
    """Stream one split through the encoder (one pass per batch, eager attention) into an accumulator.

    Batches come from ``length_batches``; ``on_batch(n)`` is called after each with its sentence count.
    """
    n_layers, n_heads = layer_head_counts(encoder)
    acc = HeadAccumulator(len(poolings), n_layers, n_heads, thresholds)
    released_at = 0  # padded length of the batch after which freed memory was last released
    for batch in length_batches(items, batch_size, max_cells):
        scan_batch(acc, encoder, tokenizer, [items[i] for i in batch], [golds[i] for i in batch], device, poolings)
        length = max(len(items[i].input_ids) for i in batch)
        if length > RELEASE_GROWTH * released_at:
            release_freed_memory()
            released_at = length
        if on_batch is not None:
            on_batch(len(batch))
    return acc


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_freed_memory() -> None:
    """Hand the heap's freed pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Batches grow as they stream (sorted by length), so glibc rarely reuses the freed blocks of earlier,
    smaller batches; without this the resident size creeps up batch after batch.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def scan_batch(acc: HeadAccumulator, encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               items: Sequence[Encoded], golds: Sequence[Sequence[int]], device: torch.device | str = "cpu",
               poolings: Sequence[str] = POOLINGS) -> None:
    """All of ``items`` as one batch: one forward pass gives every head's word scores, added to ``acc``."""
    for idx, scores in iter_head_scores(encoder, items, tokenizer, len(items), device, poolings):
        acc.update(scores, [golds[i] for i in idx])                            # scores [B, P, L, H, W]


def head_rows(dev: HeadAccumulator, split: HeadAccumulator, poolings: Sequence[str]) -> list[dict]:
    """One row per (pooling, layer, head): MAP and AUROC on ``split`` at dev's calibrated threshold."""
    metrics = split.metrics_at(dev.calibrate())
    average_precision = split.map()
    auc, _ = split.auroc()
    corr = split.corr()
    rows = []
    for (p, layer, head), value in np.ndenumerate(average_precision):
        row = {"layer": layer, "head": head, "pooling": poolings[p], "map": float(value)}
        row.update({k: float(v[p, layer, head]) for k, v in metrics.items()})
        row.update(auroc=float(auc[p, layer, head]), corr=float(corr[p, layer, head]),
                   n_sentences=split.n_sentences)
        rows.append(row)
    return rows


def score_list_row(pooling: str, dev_golds: Sequence[Sequence[int]], dev_scores: Sequence[Sequence[float]],
                   golds: Sequence[Sequence[int]], scores: Sequence[Sequence[float]],
                   threshold: float | None = None) -> dict:
    """A row for a method with word-score lists (soft attention, random), computed exactly.

    ``threshold=None``: calibrated on dev with ``metrics.calibrate_threshold`` (exact, over distinct scores).
    """
    if threshold is None:
        threshold = calibrate_threshold(dev_golds, dev_scores)
    m = token_metrics(golds, scores, threshold=threshold)
    y = np.concatenate([np.asarray(g, dtype=np.int64) for g in golds])
    s = np.concatenate([np.asarray(x, dtype=np.float64) for x in scores])
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else float("nan")
    row = {"layer": None, "head": None, "pooling": pooling, "auroc": auc}
    row.update({k: m[k] for k in METRIC_KEYS if k in m})
    return row
