"""zs_core.deletion: P(positive | a random word masked) - P(positive | the top-scored word masked), over the
positive sentences; exact values on a model whose decision is known, and on the trained marker task."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from zs_core.batching import Encoded, encode
from zs_core.checkpoint import load_checkpoint
from zs_core.config import DataConfig
from zs_core.data import load_splits
from zs_core.deletion import deletion, masked, random_word
from zs_core.scores import model_scores

CUE, MASK, PAD = 7, 103, 0  # piece ids: the cue the toy model decides on, the mask and pad tokens


class CueModel(torch.nn.Module):
    """P(positive) = 0.9 when the cue piece is in the input, else 0.2; no word scores of its own."""

    cfg = SimpleNamespace(is_seq_class=True)

    def forward(self, batch, labels=None):
        has = (batch["input_ids"] == CUE).any(dim=1)                             # [B]
        probs = torch.where(has, 0.9, 0.2)
        return {"sentence_scores": probs, "token_scores": None}, torch.tensor(0.0)


class Tokens:
    """The two things model_scores and deletion ask of a tokenizer: pad, and the mask and pad ids."""

    def __init__(self, mask_token_id=MASK):
        self.mask_token_id, self.pad_token_id = mask_token_id, PAD

    def pad(self, features, return_tensors="pt"):
        ids = features["input_ids"]
        length = max(map(len, ids))
        return {"input_ids": torch.tensor([x + [PAD] * (length - len(x)) for x in ids]),
                "attention_mask": torch.tensor([[1] * len(x) + [0] * (length - len(x)) for x in ids])}


def item(pieces: list[tuple[int, int]], label: float, n_words: int | None = None) -> Encoded:
    """[CLS] + (piece id, word) pairs + [SEP]; ``n_words`` above the pieces' words: words cut off."""
    words = [w for _, w in pieces]
    return Encoded([101, *(p for p, _ in pieces), 102], [-1, *words, -1], n_words or len(set(words)), label, None)


def test_masking_the_cue_or_a_random_word_gives_the_difference_by_hand():
    a = item([(CUE, 0), (5, 1), (6, 2)], 1.0)       # the cue word scored highest: masking it -> 0.2
    b = item([(5, 0), (8, 1), (CUE, 1)], 1.0)       # the cue is word 1's second piece; word 0 scored highest
    c = item([(CUE, 0)], 0.0)                       # a negative sentence: left out
    words = [[0.8, 0.1, 0.3], [0.6, 0.5], [0.9]]
    assert masked(b, 1, MASK).input_ids == [101, 5, MASK, MASK, 102]   # every piece of the word
    # a random word is one that has a piece, the same for the same pieces
    rand_a, rand_b = random_word(a, [0, 1, 2]), random_word(b, [0, 1])
    assert rand_a in (0, 1, 2) and rand_a == random_word(item([(CUE, 0), (5, 1), (6, 2)], 1.0), [0, 1, 2])
    top = [0.2, 0.9]                                 # a: the cue masked; b: word 0 masked, the cue stays
    rand = [0.2 if rand_a == 0 else 0.9, 0.2 if rand_b == 1 else 0.9]
    got = deletion(CueModel(), [a, b, c], words, Tokens(), batch_size=2)
    assert got == pytest.approx(sum(rand) / 2 - sum(top) / 2, abs=1e-7)


def test_the_top_word_is_one_with_a_piece_and_no_positive_sentence_is_nan():
    cut = item([(5, 0), (CUE, 1)], 1.0, n_words=3)   # word 2 was cut off by max_seq_length: never masked
    # word 2 scores highest but has no piece: the top word is word 1 (the cue), so masking it gives 0.2
    rand = 0.2 if random_word(cut, [0, 1]) == 1 else 0.9
    assert deletion(CueModel(), [cut], [[0.1, 0.5, 0.9]], Tokens(), 4) == pytest.approx(rand - 0.2, abs=1e-7)
    assert math.isnan(deletion(CueModel(), [item([(CUE, 0)], 0.0)], [[0.9]], Tokens(), 4))
    # no mask token: the pad token stands in
    assert deletion(CueModel(), [cut], [[0.1, 0.5, 0.9]], Tokens(mask_token_id=None), 4) == pytest.approx(
        rand - 0.2, abs=1e-7)


def test_a_model_trained_on_the_marker_task_depends_on_its_top_word(marker_task):
    """The planted marker decides the sentence: masking the top-scored word (the marker) costs far more than a
    random word; scores pointing at a random word instead give about 0."""
    model, tokenizer, cfg = load_checkpoint(marker_task["checkpoint"])
    test = load_splits(DataConfig(dir=str(marker_task["data"]), positive_labels=("i",)), ("test",))["test"]
    items, _ = encode(test, tokenizer, cfg.data.max_seq_length)
    words = model_scores(model, items, tokenizer, 16).words
    own = deletion(model, items, words, tokenizer, 16)
    shuffled = deletion(model, items, [w[::-1] for w in words], tokenizer, 16)  # scores that point elsewhere
    assert own > 0.3 and own > shuffled + 0.3, (own, shuffled)
