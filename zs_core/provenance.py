"""Which data a result came from: the provenance columns every output carries."""
from __future__ import annotations

import hashlib
import json
import math
import os

from zs_core.config import SPLITS, DataConfig
from zs_core.data import Sentence

SKEW = 0.10  # a limit whose share of positive sentences is this far from its whole split's (and further than
#              3 standard errors of a random cut of its size: no notice by chance on a small limit) is noticed


def data_provenance(data_cfg: DataConfig, splits: tuple[str, ...] | list[str] = SPLITS) -> dict[str, str]:
    """Which data a result came from: the named dataset or folder, positive labels, limit and sample, which
    sentence labels (any positive word, or sentence-level files), and the first 12 hex digits of the sha256
    of each split's file (and of its sentence-level file)."""
    files = {split: data_cfg.split_files(split) for split in splits}
    level = {split: f.sentences for split, f in files.items() if f.sentences}
    out = {"data": data_name(data_cfg), "data_positive_labels": ",".join(data_cfg.positive()),
           "data_limit": json.dumps(data_cfg.limit or {}, sort_keys=True),
           "data_sample": json.dumps(data_cfg.sample or {}, sort_keys=True),
           "data_sentence_labels": sentence_labels(splits, level)}
    out.update({f"data_sha256_{split}": short_sha256(f.tokens) for split, f in files.items()})
    return {**out, **{f"data_sentences_sha256_{split}": short_sha256(path) for split, path in level.items()}}


def sentence_labels(splits, level: dict) -> str:
    """Which sentence labels the splits use: "sentence-level files" (every split has one), "any positive word"
    (none has), or, where only some splits have one, both with their splits ("sentence-level files: train,
    dev; any positive word: test")."""
    if len(level) in (0, len(splits)):
        return "sentence-level files" if level else "any positive word"
    word = [split for split in splits if split not in level]
    return f"sentence-level files: {', '.join(level)}; any positive word: {', '.join(word)}"


def data_name(data_cfg: DataConfig) -> str:
    """The named dataset, the folder, or ``seed_dataset@root``."""
    if data_cfg.seed_dataset is not None:
        return f"{data_cfg.seed_dataset}@{data_cfg.root}"
    return data_cfg.dir or data_cfg.dataset


def short_sha256(path: str | os.PathLike) -> str:
    """The first 12 hex digits of a file's sha256."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:12]


def limit_notices(data_cfg: DataConfig, cut: dict[str, list[Sentence]], whole: dict[str, list[Sentence]]) -> list[str]:
    """One line per split whose ``limit`` (its first N sentences) holds a share of positive sentences further
    from the whole split's than SKEW and than chance: the sign of a file ordered by label (SST's files are ordered by
    sentiment), where ``sample`` (a fixed random N) is what was meant."""
    lines = []
    for split, n in (data_cfg.limit or {}).items():
        if split not in cut or not cut[split] or n >= len(whole[split]) or (data_cfg.sample or {}).get(split):
            continue
        share = [sum(s.label for s in part) / len(part) for part in (cut[split], whole[split])]
        chance = 3 * math.sqrt(share[1] * (1 - share[1]) / len(cut[split]))  # 3 standard errors of a random cut
        if abs(share[0] - share[1]) > max(SKEW, chance):
            lines.append(f"notice: data.limit.{split}: the first {len(cut[split])} {split} sentences are "
                         f"{share[0]:.1%} positive, the whole split {share[1]:.1%} (is the file ordered by label?); "
                         f"data.sample.{split} takes a fixed random {n} instead")
    return lines
