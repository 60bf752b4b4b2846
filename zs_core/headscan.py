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
  which ``auroc_with_bound()`` returns beside it (0 when no bin holds both a positive and a negative word).

Batches (``length_batches``): at most ``batch_size`` sentences and at most MAX_CELLS attention cells per
map (B * T^2), so one batch's L x H attention maps have a bounded size; each time batches have grown
RELEASE_GROWTH times longer the freed heap is handed back to the OS (``release_freed_memory``). Peak memory
then depends neither on the number of sentences nor much on the longest one.

Rows come from ``evaluation.method_rows``, as for methods with one score list per sentence (soft attention,
the random floor), which ``evaluation.ListScores`` scores exactly.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import Encoded, encode
from zs_core.data import Sentence
from zs_core.encoders import layer_head_counts
from zs_core.metrics import f_beta, sentence_average_precision
from zs_core.scores import POOLINGS, iter_head_scores

__all__ = ["threshold_grid", "HeadAccumulator", "length_batches", "encode_in_chunks", "scan_split", "scan_batch",
           "release_freed_memory", "MAX_CELLS"]

# Attention cells per map in one batch (B * T^2): 32 sentences of 64 pieces; at 128 pieces, 8 sentences.
MAX_CELLS = 32 * 64 * 64
RELEASE_GROWTH = 1.05  # release freed memory when batches got this much longer (each release costs page faults)


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


class HeadAccumulator:
    """Streaming per-head MAP, threshold counts, AUROC and corr for word scores [B, P, L, H, W] (numpy, on
    CPU). It answers as ``evaluation.ListScores`` does, with arrays [P, L, H], so ``evaluation.method_rows``
    turns it into rows."""

    def __init__(self, n_pool: int, n_layers: int, n_heads: int, thresholds: np.ndarray | None = None,
                 poolings: Sequence[str] | None = None):
        self.shape = (n_pool, n_layers, n_heads)
        self.poolings = tuple(poolings) if poolings is not None else tuple(POOLINGS[:n_pool])
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
        """[P, L, H] the grid threshold maximising token F1 (ties: the highest); NaN without a positive word."""
        tp, fp, fn = self.counts()
        if not (tp[:, 0] + fn[:, 0]).any():
            return np.full(self.shape, np.nan)
        den = 2 * tp + fp + fn
        f1 = np.divide(2.0 * tp, den, out=np.zeros(tp.shape), where=den > 0)
        return self.thresholds[f1.shape[1] - 1 - np.argmax(f1[:, ::-1], axis=1)].reshape(self.shape)

    def metrics_at(self, thresholds: np.ndarray) -> dict[str, np.ndarray]:
        """Exact precision, recall, F1, F0.5 at each head's threshold (a grid value); each [P, L, H]."""
        wanted = np.asarray(thresholds, dtype=np.float64).ravel()
        index = np.searchsorted(self.thresholds, wanted).clip(max=self.thresholds.size - 1)
        known = np.isfinite(wanted)
        if (self.thresholds[index][known] != wanted[known]).any():
            raise ValueError("head-scan thresholds must be values of the accumulator's grid")
        tp, fp, fn = self.counts()
        rows = np.arange(self.n)
        tp, fp, fn = tp[rows, index], fp[rows, index], fn[rows, index]
        out = {
            "precision": [t / (t + f) if t + f else 0.0 for t, f in zip(tp, fp)],
            "recall": [t / (t + f) if t + f else 0.0 for t, f in zip(tp, fn)],
            "f1": [f_beta(int(t), int(p), int(n), 1.0) for t, p, n in zip(tp, fp, fn)],
            "f05": [f_beta(int(t), int(p), int(n), 0.5) for t, p, n in zip(tp, fp, fn)],
        }
        return {k: np.where(known, np.asarray(v, dtype=np.float64), np.nan).reshape(self.shape)
                for k, v in out.items()}

    def score_sets(self) -> list[dict]:
        """(layer, head, pooling) of every score set, in the order of the arrays' ``ravel()``."""
        return [{"layer": layer, "head": head, "pooling": self.poolings[p]}
                for p, layer, head in np.ndindex(*self.shape)]

    def corr(self) -> np.ndarray:
        """[P, L, H] Pearson correlation of gold (0/1) and max(score, 0); 0 where either is constant."""
        n, sc, scc, scy, sy = self._sums
        cov = scy - sc * sy / np.maximum(n, 1)
        var_c, var_y = scc - sc * sc / np.maximum(n, 1), sy - sy * sy / np.maximum(n, 1)   # y^2 = y
        den = np.sqrt(np.clip(var_c, 0, None) * np.clip(var_y, 0, None))
        out = np.divide(cov, den, out=np.zeros(self.n), where=den > 1e-12 * np.maximum(n, 1))
        return out.reshape(self.shape)

    def auroc(self) -> np.ndarray:
        """[P, L, H] AUROC (ties within a grid bin count half); NaN without positive or negative words."""
        return self.auroc_with_bound()[0]

    def auroc_with_bound(self) -> tuple[np.ndarray, np.ndarray]:
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
    acc = HeadAccumulator(len(poolings), n_layers, n_heads, thresholds, poolings)
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
