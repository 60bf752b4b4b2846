"""What the HTML report shows, computed without plotting or HTML: the attention head to show (from
heads.parquet rows or a scan of dev), example sentences scored by the model's own word scores, that head and
LIME, and the colour of every word."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from zs_core.config import DataConfig
from zs_core.data import Sentence

POSITIVE_RGB, NEGATIVE_RGB = "214,39,40", "31,119,180"  # red: the score points at the word; blue: against
MOST_ALPHA = 0.8
@dataclass
class Examples:
    sentences: list[Sentence]
    probs: list[float]
    columns: dict[str, list[list[float]]] = field(default_factory=dict)  # method name -> word scores
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HeadChoice:
    layer: int
    head: int
    pooling: str
    why: str  # where the choice came from, for the page


def choose_head(rows: pd.DataFrame, checkpoint: Path, base_model: str, explicit: bool) -> HeadChoice | None:
    """The head with the best MAP among heads.parquet ``rows`` scanned on this checkpoint, else on its base
    encoder; with ``explicit`` (--heads) the best head of any model. Dev rows decide when there are any.
    An optional ``file`` column names where a row came from."""
    if rows.empty or not {"layer", "head", "pooling", "map", "model"} <= set(rows.columns):
        return None
    rows = rows[rows["layer"].notna() & rows["map"].notna()]
    if "method" in rows:
        rows = rows[rows["method"] == "head"]
    same = rows["model"].map(lambda m: _same_path(m, checkpoint)).astype(bool)
    for chosen, what in ((rows[same], "this checkpoint"), (rows[rows["model"] == base_model], base_model),
                         (rows if explicit else rows.iloc[:0], "the model named in the file")):
        if "split" in chosen and (chosen["split"] == "dev").any():
            chosen = chosen[chosen["split"] == "dev"]
        if not chosen.empty:
            best = chosen.loc[chosen["map"].idxmax()]
            split = f"{best['split']} " if "split" in best else ""
            where = f" in {best['file']}" if "file" in best else ""
            why = f"best {split}MAP ({best['map']:.3f}){where}, scanned on {what}"
            return HeadChoice(int(best["layer"]), int(best["head"]), str(best["pooling"]), why)
    return None


def head_from_files(paths: list[Path], checkpoint: Path, base_model: str, explicit: bool) -> HeadChoice | None:
    """``choose_head`` over the rows of these heads.parquet files."""
    frames = [pd.read_parquet(p).assign(file=str(p)) for p in paths]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return choose_head(rows, checkpoint, base_model, explicit)


def _same_path(model, checkpoint: Path) -> bool:
    try:
        return Path(str(model)).resolve() == Path(checkpoint).resolve()
    except (OSError, ValueError):
        return False


def head_on_dev(encoder, tokenizer, dev: list[Sentence], max_len: int, lowercase: bool, batch: int,
                device: str = "cpu") -> HeadChoice:
    """Scan every head over the labelled dev split (one pass per batch) and take the best by MAP."""
    import numpy as np

    from zs_core.batching import encode
    from zs_core.headscan import scan_split
    from zs_core.scores import POOLINGS

    items, _ = encode(dev, tokenizer, max_len, lowercase=lowercase)
    acc = scan_split(encoder, tokenizer, items, [list(s.gold) for s in dev], batch, device, POOLINGS)
    average_precision = acc.map()                                                       # [P, L, H]
    p, layer, head = np.unravel_index(int(np.argmax(average_precision)), average_precision.shape)
    why = f"best dev MAP ({average_precision[p, layer, head]:.3f}) over {len(dev)} dev sentences, scanned now"
    return HeadChoice(int(layer), int(head), POOLINGS[p], why)


def example_scores(checkpoint: Path, data: DataConfig, n: int, lime_samples: int, heads: list[Path],
                   explicit_heads: bool, batch: int = 32) -> Examples:
    """The first ``n`` positive test sentences, scored by the model's own word scores, the best head and LIME."""
    from zs_core.attribution import lime_word_scores
    from zs_core.batching import encode
    from zs_core.checkpoint import load_checkpoint
    from zs_core.data import load_splits
    from zs_core.encoders import layer_head_counts, pick_device
    from zs_core.protocol import model_method
    from zs_core.scores import head_word_scores, model_scores

    model, tokenizer, cfg = load_checkpoint(checkpoint, attentions=True)
    device = pick_device()
    model.to(device)
    splits = load_splits(data, ("dev", "test"))
    labelled = [s for s in splits["test"] if s.labels is not None]
    chosen = [s for s in (labelled or splits["dev"]) if s.label][:n]
    max_len, lowercase = cfg.data.max_seq_length, cfg.data.lowercase
    items, _ = encode(chosen, tokenizer, max_len, lowercase=lowercase)
    probs, words, _ = model_scores(model, items, tokenizer, batch, device)
    out = Examples(chosen, probs)
    if not labelled:
        out.notes.append("The test split has no labels: the examples are positive dev sentences.")
    if words is None:
        out.notes.append("This model has a plain classifier head, so it has no word scores of its own.")
    else:
        out.columns[model_method(cfg.model).replace("_", " ")] = words
    choice = head_from_files(heads, checkpoint, cfg.model.model_name, explicit_heads)
    layers, n_heads = layer_head_counts(model.encoder)
    if choice is not None and not (choice.layer < layers and choice.head < n_heads):
        out.notes.append(f"The head L{choice.layer} H{choice.head} ({choice.why}) does not exist in this "
                         f"{layers} x {n_heads} model; scanned dev instead.")
        choice = None
    if choice is None:
        dev = [s for s in splits["dev"] if s.labels is not None]
        choice = head_on_dev(model.encoder, tokenizer, dev, max_len, lowercase, batch, device) if dev else None
    if choice is None:
        out.notes.append("Best head: skipped (no heads.parquet and no labelled dev split to pick a head on).")
    else:
        name = f"head L{choice.layer} H{choice.head} {choice.pooling}"
        out.columns[name] = head_word_scores(model.encoder, items, tokenizer, choice.layer, choice.head,
                                             choice.pooling, batch, device)
        out.notes.append(f"{name}: {choice.why}.")
    if lime_samples < 2:
        out.notes.append("LIME: skipped (--lime-samples below 2).")
    elif tokenizer.mask_token_id is None:
        out.notes.append("LIME: skipped (the tokenizer has no mask token to remove words with).")
    else:
        out.columns[f"LIME ({lime_samples} samples)"] = lime_word_scores(model, items, tokenizer, lime_samples,
                                                                         device=device)
    return out


def scale(row: list[float]) -> tuple[float, float]:
    """(zero point, span) of one method's scores in one sentence: scores that are all >= 0 run from the
    sentence's lowest (white) to its highest (darkest), so a constant offset (attention heads) does not
    wash everything out; signed scores (LIME) keep 0 as white and scale by the largest |score|."""
    finite = [x for x in row if x == x and abs(x) != float("inf")] or [0.0]
    if min(finite) >= 0:
        return min(finite), max(finite) - min(finite)
    return 0.0, max(abs(x) for x in finite)


def shade(score: float, zero: float, span: float) -> str:
    """CSS background of one word: red for scores above ``zero``, blue below, alpha by distance / span."""
    if not span or score != score:
        return "transparent"
    alpha = min(abs(score - zero) / span, 1.0) * MOST_ALPHA
    return f"rgba({POSITIVE_RGB if score >= zero else NEGATIVE_RGB},{alpha:.3f})"


def chunks(words: tuple[str, ...] | list[str], most: int = 110) -> list[range]:
    """Word ranges of at most ~``most`` characters, so a long sentence wraps instead of scrolling."""
    out, start, width = [], 0, 0
    for i, word in enumerate(words):
        if i > start and width + len(word) + 2 > most:
            out.append(range(start, i))
            start, width = i, 0
        width += len(word) + 2
    return out + [range(start, len(words))]


def shaded(examples: Examples) -> list[dict]:
    """Per sentence: ``prob``, ``n_gold``, ``n_words`` and ``parts`` (the sentence wrapped in pieces), each
    piece a list of rows ``{name, range, cells}`` (the gold row first, range ""), each cell ``{word, gold,
    background, score}`` (background and score "" in the gold row)."""
    out = []
    for k, sentence in enumerate(examples.sentences):
        words, gold = sentence.words, sentence.gold
        scored = [(name, scores[k], *scale(scores[k])) for name, scores in examples.columns.items()]
        parts = []
        for part in chunks(words):
            rows = [{"name": "gold", "range": "",
                     "cells": [{"word": words[i], "gold": bool(gold[i]), "background": "", "score": ""}
                               for i in part]}]
            for name, row, zero, span in scored:
                cells = [{"word": words[i], "gold": bool(gold[i]), "background": shade(row[i], zero, span),
                          "score": f"{row[i]:.4g}"} for i in part]
                low, high = min(row, default=0.0), max(row, default=0.0)
                rows.append({"name": name, "range": f"{low:.3g} to {high:.3g}", "cells": cells})
            parts.append(rows)
        out.append({"prob": f"{examples.probs[k]:.3f}", "n_gold": int(sum(gold)), "n_words": len(gold),
                    "parts": parts})
    return out
