"""Word-score files (the seed's stages 2 and 3): writing a prediction as TSV + Parquet, reading one back,
checking it against gold (``evaluation`` scores it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from zs_core.data import Sentence, read_tsv, word_lines
from zs_core.errors import InputError
from zs_core.files import atomic_path, write_text_atomic

PARQUET_META_KEY = b"zs_sweep"  # Parquet schema metadata: JSON saying how the scores were made


def parquet_path(tsv_path: str | os.PathLike) -> Path:
    """The Parquet copy beside a TSV prediction file: same name, suffix .parquet."""
    return Path(tsv_path).with_suffix(".parquet")


def write_predictions(tsv_path: str | os.PathLike, sentences: Sequence[Sentence],
                      scores: Sequence[Sequence[float]], meta: dict | None = None) -> tuple[Path, Path]:
    """The TSV (seed format) and a Parquet copy (sentence, word_index, word, score); both or neither."""
    tsv = Path(tsv_path)
    parquet = parquet_path(tsv)
    if len(sentences) != len(scores) or any(len(s.words) != len(x) for s, x in zip(sentences, scores)):
        raise ValueError("every sentence needs one score per word")
    table = pa.table({
        "sentence": pa.array([i for i, s in enumerate(sentences) for _ in s.words], pa.int64()),
        "word_index": pa.array([j for s in sentences for j in range(len(s.words))], pa.int64()),
        "word": pa.array([w for s in sentences for w in s.words], pa.string()),
        "score": pa.array([float(x) for row in scores for x in row], pa.float64()),
    })
    table = table.replace_schema_metadata({PARQUET_META_KEY: json.dumps(meta or {}).encode()})
    with atomic_path(parquet) as tmp:  # the Parquet lands only once the TSV has
        pq.write_table(table, tmp)
        write_word_scores_tsv(tsv, list(sentences), [list(x) for x in scores])
    return tsv, parquet


_SCORE_WORDING = (("expected word<TAB>label", "expected word<TAB>score"), (": empty label", ": empty score"),
                  (": label ", ": score "), (" (categorical labels need positive_labels)", ""),
                  ("(mixed numeric and categorical labels)", "(others are numbers)"))


def read_predictions(path: str | os.PathLike) -> list[Sentence]:
    """A word-score TSV: ``word<TAB>score``; every score must be a finite number (else file:line)."""
    try:
        return read_tsv(path, labelled=True)
    except InputError as err:  # read_tsv speaks of labels; here the last column is a score
        message = str(err)
        for old, new in _SCORE_WORDING:
            message = message.replace(old, new, 1)
        raise InputError(message) from None


def prediction_meta(tsv_path: str | os.PathLike) -> dict:
    """How a prediction was made (method, layer, head, pooling, ...), from the Parquet copy's metadata;
    {} when there is no Parquet copy (a TSV from elsewhere, e.g. the seed's)."""
    parquet = parquet_path(tsv_path)
    if not parquet.is_file():
        return {}
    try:
        meta = pq.read_schema(parquet).metadata or {}
        return json.loads(meta.get(PARQUET_META_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowException):
        return {}


def token_targets(path: str | os.PathLike, train: Sequence[Sentence], normalise: bool = False) -> list[list[float]]:
    """Word-score targets for the beta loss: a word-score TSV holding the train split's sentences, in order;
    ``normalise`` (the seed's normalise_preds) sets negatives to 0 and rescales each sentence to sum 1."""
    scored = read_predictions(path)
    if len(scored) != len(train):
        raise InputError(f"{path}: {len(scored)} sentences, but the train split has {len(train)}")
    targets = []
    for i, (pred, gold) in enumerate(zip(scored, train)):
        if pred.words != gold.words:
            raise InputError(f"{path}: sentence {i + 1} does not hold the train split's words")
        values = [float(v) for v in pred.labels]
        if normalise:
            values = [max(v, 0.0) for v in values]
            total = sum(values)
            values = [v / total for v in values] if total > 0 else values
        targets.append(values)
    return targets


def read_gold(path: str | os.PathLike, positive_labels: Sequence[str] = ()) -> list[Sentence]:
    """Gold word labels: categories with positive_labels, else numbers (positive when > 0)."""
    return read_tsv(path, positive_labels=tuple(positive_labels), labelled=True)


def _position(path, sentences: Sequence[Sentence], k: int, j: int) -> str:
    """``path:line`` of word j of sentence k (or where it would be), or ``path sentence k+1, word j+1``."""
    if not os.path.isfile(path):  # a named dataset's split
        return f"{path} sentence {k + 1}, word {j + 1}"
    lines, end = word_lines(path)
    if k >= len(sentences):
        return f"{path}:{end} (end of file)"
    if j >= len(sentences[k].words):
        return f"{path}:{lines[k][-1] + 1} (end of sentence)"
    return f"{path}:{lines[k][j]}"


def check_same_words(preds_path: str | os.PathLike, preds: Sequence[Sentence], gold_path: str | os.PathLike,
                     gold: Sequence[Sentence]) -> None:
    """InputError naming the first sentence or word where the two differ, with both line numbers."""
    n = min(len(preds), len(gold))
    k = next((i for i in range(n) if preds[i].words != gold[i].words), n)
    if k == n:
        if len(preds) == len(gold):
            return
        j, reason = 0, f"{len(preds)} sentences in the predictions, {len(gold)} in gold"
    else:
        a, b = preds[k].words, gold[k].words
        j = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        got = [repr(w[j]) if j < len(w) else "no word" for w in (a, b)]
        reason = f"sentence {k + 1} ({len(a)} vs {len(b)} words), word {j + 1}: {got[0]} vs {got[1]}"
    raise InputError(f"{_position(preds_path, preds, k, j)} vs {_position(gold_path, gold, k, j)}: "
                     f"predictions and gold differ: {reason}")


def write_word_scores_tsv(path: str | os.PathLike, sentences: list[Sentence],
                          scores: list[list[float]]) -> None:
    """The seed's prediction file: ``word<TAB>score`` per line, a blank line after each sentence (atomic)."""
    if len(sentences) != len(scores):
        raise ValueError(f"{len(sentences)} sentences but {len(scores)} score lists")
    lines = []
    for k, (sentence, row) in enumerate(zip(sentences, scores)):
        if len(row) != len(sentence.words):
            raise ValueError(f"sentence {k}: {len(sentence.words)} words but {len(row)} scores")
        lines.extend(f"{w}\t{float(x)!r}\n" for w, x in zip(sentence.words, row))
        lines.append("\n")
    write_text_atomic(path, "".join(lines))
