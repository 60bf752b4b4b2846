"""Every attention head of an encoder, scored from one forward pass per batch and accumulated as it streams.

A ``HeadAccumulator`` keeps, per (pooling, layer, head), the sum of per-sentence average precisions and a
count, and two histograms (positive and negative words) over a fixed grid of candidate thresholds. Its
memory is O(P * L * H * len(grid)) whatever the number of sentences.

* MAP: per sentence exactly ``sklearn.metrics.average_precision_score(gold, max(score, 0))`` (ties as
  sklearn: one step per distinct score), computed for all heads at once; mean over sentences with a
  positive word.
* Counts: a word is predicted at grid threshold t when score >= t. The grid holds 0, a geometric grid
  1e-6 .. 1 and a linear grid 0 .. 1 (attention is in [0, 1]); counts at grid thresholds are exact.
* Calibration: on dev the grid threshold maximising token F1 (ties: the highest); on the reported split
  the counts at that threshold are exact. Top-k limits are not used here (top_k = 0).
* AUROC: from the two histograms, scores in one grid bin counted as tied (half a pair each). Pairs in
  different bins are ordered exactly, so |auroc - exact auroc| <= 0.5 * sum_b pos_b * neg_b / (P * N),
  which ``auroc()`` returns beside it (0 when no bin holds both a positive and a negative word).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import Encoded
from zs_core.encoders import layer_head_counts
from zs_core.metrics import calibrate_threshold, f_beta, token_metrics
from zs_core.scores import POOLINGS, iter_head_scores

__all__ = ["threshold_grid", "sentence_average_precision", "HeadAccumulator", "scan_split", "head_rows",
           "score_list_row", "METRIC_KEYS"]

METRIC_KEYS = ("map", "f1", "precision", "recall", "f05", "threshold", "auroc", "n_sentences")


def threshold_grid(n_geometric: int = 4096, n_linear: int = 1025) -> np.ndarray:
    """Candidate thresholds, ascending: 0, geomspace(1e-6, 1, n_geometric) and linspace(0, 1, n_linear)."""
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, n_geometric), np.linspace(0.0, 1.0, n_linear)])
    return np.unique(grid)


def _gold_tensor(golds: Sequence[Sequence[int]], width: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels [B, W] float64, valid [B, W] bool): word positions past a sentence's end are not valid."""
    y = torch.zeros(len(golds), width, dtype=torch.float64)
    valid = torch.zeros(len(golds), width, dtype=torch.bool)
    for row, gold in enumerate(golds):
        if len(gold) > width:
            raise ValueError(f"sentence {row}: {len(gold)} gold labels but only {width} word scores")
        y[row, : len(gold)] = torch.tensor(gold, dtype=torch.float64)
        valid[row, : len(gold)] = True
    return y.to(device), valid.to(device)


def sentence_average_precision(scores: torch.Tensor, y: torch.Tensor,
                               valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's average precision of max(score, 0) per sentence, for every head at once.

    scores [B, N, W] (N heads), y [B, W] 0/1, valid [B, W]. Returns (ap [B, N] float64, has_positive [B]).
    AP = sum over positives of the precision at the last word of its tie group, / positives.
    """
    width = scores.shape[-1]
    s = scores.to(torch.float64).clamp_min(0.0)
    s = torch.where(valid[:, None, :], s, torch.full_like(s, -1.0))          # padding sorts last
    order = torch.argsort(s, dim=-1, descending=True, stable=True)             # [B, N, W]
    s_sorted = s.gather(-1, order)
    y_sorted = y[:, None, :].expand_as(s).gather(-1, order)                    # [B, N, W]
    rank = torch.arange(1, width + 1, dtype=torch.float64, device=s.device)
    precision = y_sorted.cumsum(-1) / rank                                     # [B, N, W]
    end = torch.ones_like(s_sorted, dtype=torch.bool)                          # last word of a tie group
    end[..., :-1] = s_sorted[..., 1:] != s_sorted[..., :-1]
    where_end = torch.where(end, rank.long() - 1, torch.full_like(order, width))
    group_end = where_end.flip(-1).cummin(-1).values.flip(-1)                 # [B, N, W]
    n_pos = y.sum(-1)                                                          # [B]
    ap = (y_sorted * precision.gather(-1, group_end)).sum(-1) / n_pos.clamp_min(1.0)[:, None]
    return ap, n_pos > 0


class HeadAccumulator:
    """Streaming per-head MAP, threshold counts and AUROC for word scores [B, P, L, H, W]."""

    def __init__(self, n_pool: int, n_layers: int, n_heads: int, thresholds: np.ndarray | None = None,
                 device: torch.device | str = "cpu"):
        self.shape = (n_pool, n_layers, n_heads)
        self.n = n_pool * n_layers * n_heads
        grid = threshold_grid() if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0 or (np.diff(grid) <= 0).any():
            raise ValueError("thresholds must be a non-empty, strictly ascending 1-d array")
        self.thresholds = grid
        self._grid = torch.tensor(grid, dtype=torch.float64, device=device)
        self.device = device
        k1 = grid.size + 1                                                     # bin b: grid[b-1] <= s < grid[b]
        self._hist = torch.zeros(self.n, k1, 2, dtype=torch.int64, device=device)   # [N, K+1, neg/pos]
        self._ap_sum = torch.zeros(self.n, dtype=torch.float64, device=device)
        self.n_with_positive = 0
        self.n_sentences = 0

    def update(self, word_scores: torch.Tensor, golds: Sequence[Sequence[int]]) -> None:
        """Add a batch: word_scores [B, P, L, H, W] (W >= every sentence's length), golds: B lists of 0/1."""
        b, p, l, h, w = word_scores.shape
        if (p, l, h) != self.shape or b != len(golds):
            raise ValueError(f"expected [{len(golds)}, {self.shape}, W] scores, got {tuple(word_scores.shape)}")
        s = word_scores.reshape(b, self.n, w).to(self.device, torch.float64)    # [B, N, W]
        y, valid = _gold_tensor(golds, w, self.device)
        ap, has = sentence_average_precision(s, y, valid)
        self._ap_sum += ap[has].sum(0)
        self.n_with_positive += int(has.sum())
        self.n_sentences += b
        bins = torch.bucketize(s, self._grid, right=True)                      # [B, N, W] in 0..K
        k1 = self._hist.shape[1]
        head = torch.arange(self.n, device=self.device)[None, :, None]
        flat = (head * k1 + bins) * 2 + y.long()[:, None, :]                   # [B, N, W]
        flat = flat[valid[:, None, :].expand_as(flat)]
        self._hist += torch.bincount(flat, minlength=self.n * k1 * 2).view(self.n, k1, 2)

    def map(self) -> np.ndarray:
        """[P, L, H] mean AP over sentences with a positive word (0 when there is none)."""
        ap = self._ap_sum.cpu().numpy() / max(self.n_with_positive, 1)
        return ap.reshape(self.shape)

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tp, fp, fn), each [N, K]: exact counts of score >= thresholds[j] per flattened head."""
        hist = self._hist.cpu().numpy()
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

    def auroc(self) -> tuple[np.ndarray, np.ndarray]:
        """(auroc, error bound), each [P, L, H]; NaN where the split lacks positive or negative words."""
        hist = self._hist.cpu().numpy().astype(np.float64)
        neg, pos = hist[:, :, 0], hist[:, :, 1]
        pairs = neg.sum(1) * pos.sum(1)
        above = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1] - pos                   # positives in higher bins
        won = (neg * (above + 0.5 * pos)).sum(1)
        tied = 0.5 * (neg * pos).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc, bound = np.where(pairs > 0, won / pairs, np.nan), np.where(pairs > 0, tied / pairs, np.nan)
        return auc.reshape(self.shape), bound.reshape(self.shape)


def scan_split(encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: Sequence[Encoded],
               golds: Sequence[Sequence[int]], batch_size: int, device: torch.device | str = "cpu",
               poolings: Sequence[str] = POOLINGS, thresholds: np.ndarray | None = None,
               on_batch: Callable[[int], None] | None = None) -> HeadAccumulator:
    """Stream one split through the encoder (one pass per batch, eager attention) into an accumulator.

    ``on_batch(n)`` is called after each batch with the number of its sentences (progress reports).
    """
    n_layers, n_heads = layer_head_counts(encoder)
    acc = HeadAccumulator(len(poolings), n_layers, n_heads, thresholds, device)
    for idx, scores in iter_head_scores(encoder, items, tokenizer, batch_size, device, poolings):
        acc.update(scores, [golds[i] for i in idx])                            # scores [B, P, L, H, W]
        if on_batch is not None:
            on_batch(len(idx))
    return acc


def head_rows(dev: HeadAccumulator, split: HeadAccumulator, poolings: Sequence[str]) -> list[dict]:
    """One row per (pooling, layer, head): MAP and AUROC on ``split`` at dev's calibrated threshold."""
    metrics = split.metrics_at(dev.calibrate())
    average_precision = split.map()
    auc, _ = split.auroc()
    rows = []
    for (p, layer, head), value in np.ndenumerate(average_precision):
        row = {"layer": layer, "head": head, "pooling": poolings[p], "map": float(value)}
        row.update({k: float(v[p, layer, head]) for k, v in metrics.items()})
        row.update(auroc=float(auc[p, layer, head]), n_sentences=split.n_sentences)
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
