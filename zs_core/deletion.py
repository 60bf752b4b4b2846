"""A label-free check that the word scores are what the classifier decides on (``protocol.DELETION``).

Over the split's sentence-positive sentences: the classifier's sentence probability with a random word masked,
minus that with the top-scored word masked, averaged. A model whose top word carries its decision scores well
above 0; one whose scores have drifted from its decision (a fine-tuned encoder can move a sentence's evidence
onto "." or "the", where a max-pooling head then finds it) scores about 0, whatever its sentence F1. It uses
the sentence labels and the model only, never a token label, so a zero-shot rule may select on it.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import NO_WORD, Encoded
from zs_core.evaluation import RANDOM_SEED
from zs_core.scores import model_scores


def masked(item: Encoded, word: int, mask_id: int) -> Encoded:
    """``item`` with every piece of word ``word`` replaced by ``mask_id``."""
    return replace(item, input_ids=[mask_id if w == word else t for t, w in zip(item.input_ids, item.word_index)])


def random_word(item: Encoded, present: Sequence[int]) -> int:
    """One of ``present`` (words with a piece), drawn from default_rng((RANDOM_SEED, crc32 of the piece ids)):
    the same word whenever the model sees the same pieces."""
    key = zlib.crc32(np.asarray(item.input_ids, dtype=np.int64).tobytes())
    return present[int(np.random.default_rng((RANDOM_SEED, key)).integers(len(present)))]


def deletion(model: torch.nn.Module, items: Sequence[Encoded], words: Sequence[Sequence[float]],
             tokenizer: PreTrainedTokenizerBase, batch_size: int,
             device: torch.device | str = "cpu") -> float:
    """mean(P(sentence | a random word masked)) - mean(P(sentence | its top-scored word masked)) over the
    sentences labelled positive; NaN when there is none or the tokenizer has neither a mask nor a pad token.

    ``words``: the model's word scores of ``items``. The top word is the first of the highest-scored words
    that kept a piece (one cut off by max_seq_length cannot be masked); the random word is ``random_word``'s.
    """
    mask_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.pad_token_id
    if mask_id is None:
        return math.nan
    top, rand = [], []
    for item, scores in zip(items, words):
        present = sorted({w for w in item.word_index if w != NO_WORD})
        if item.label <= 0 or not present:
            continue
        top.append(masked(item, max(present, key=lambda w: scores[w]), mask_id))
        rand.append(masked(item, random_word(item, present), mask_id))
    if not top:
        return math.nan
    probs = model_scores(model, top + rand, tokenizer, batch_size, device).probs
    return float(np.mean(probs[len(top):]) - np.mean(probs[: len(top)]))
