"""zs_core.attribution: LIME and integrated gradients on a tiny model trained on an easy made-up task.

The task (conftest's ``marker_task``): positive sentences hold one marker word ("zebra"), labelled ``i``;
every other word is ``c``.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from zs_core.attribution import (
    PositiveProbability,
    ig_piece_scores,
    ig_word_scores,
    lime_masks,
    lime_word_scores,
    removed_ids,
)
from zs_core.batching import NO_WORD, collate, encode
from zs_core.checkpoint import load_checkpoint
from zs_core.config import DataConfig
from zs_core.data import load_splits
from zs_core.errors import InputError
from zs_core.scores import model_scores


@pytest.fixture(scope="module")
def task(marker_task):
    """The marker task's model (conftest: trained once per session), tokenizer, test sentences and items."""
    model, tokenizer, _ = load_checkpoint(marker_task["checkpoint"])
    test = load_splits(DataConfig(dir=str(marker_task["data"]), positive_labels=("i",)),
                       ("test",))["test"]
    items, _ = encode(test, tokenizer, 128)
    return model, tokenizer, test, items


def marker_first(sentences, scores, marker: str) -> float:
    """Share of positive sentences whose top-scored word is the marker."""
    hits = [int(np.argmax(s)) == x.words.index(marker) for x, s in zip(sentences, scores) if marker in x.words]
    return float(np.mean(hits))


def test_lime_masks_keep_the_sentence_first_and_remove_at_least_one_word():
    masks = lime_masks(6, 300, seed=0, index=2)
    assert masks.shape == (300, 6) and masks[0].tolist() == [1] * 6
    assert (masks[1:].sum(dim=1) <= 5).all()
    assert torch.equal(masks, lime_masks(6, 300, seed=0, index=2))
    assert not torch.equal(masks, lime_masks(6, 300, seed=0, index=3))
    assert set(masks[1:].sum(dim=1).tolist()) == set(range(6))  # 1..6 words removed, all drawn


def test_lime_repeatable_with_the_same_seed(task):
    model, tokenizer, _, items = task
    a = lime_word_scores(model, items[:6], tokenizer, n_samples=128, perturbations_per_eval=32, seed=3)
    b = lime_word_scores(model, items[:6], tokenizer, n_samples=128, perturbations_per_eval=100, seed=3)
    c = lime_word_scores(model, items[:6], tokenizer, n_samples=128, perturbations_per_eval=32, seed=4)
    assert [len(x) for x in a] == [it.n_words for it in items[:6]]
    np.testing.assert_allclose(np.concatenate(a), np.concatenate(b), atol=1e-6)
    assert not np.allclose(np.concatenate(a), np.concatenate(c))


def test_lime_cache_changes_nothing(task):
    model, tokenizer, _, items = task
    cached = lime_word_scores(model, items[:4], tokenizer, n_samples=96, perturbations_per_eval=48)
    plain = lime_word_scores(model, items[:4], tokenizer, n_samples=96, perturbations_per_eval=48, cache=False)
    np.testing.assert_allclose(np.concatenate(cached), np.concatenate(plain), atol=1e-6)


def test_lime_replaces_whole_words_by_the_mask_token_and_never_special_tokens(task, monkeypatch):
    model, tokenizer, _, _ = task
    from zs_core.data import Sentence

    (item,), _ = encode([Sentence(("zebrafication", "cat", "unbelievably"), None)], tokenizer, 128)
    seen = []
    run = PositiveProbability.run
    monkeypatch.setattr(PositiveProbability, "run", lambda self, ids, *a: seen.append(ids) or run(self, ids, *a))
    lime_word_scores(model, [item], tokenizer, n_samples=64, perturbations_per_eval=16)
    ids = torch.cat(seen)                                                               # [N, T]
    original = torch.tensor(item.input_ids)
    word_index = torch.tensor(item.word_index)
    assert max(item.word_index) == 2 and len(item.input_ids) > 5  # multi-piece words
    special = word_index == NO_WORD
    assert (ids[:, special] == original[special]).all()
    masked = ids == tokenizer.mask_token_id
    assert ((ids == original) | masked)[:, ~special].all()
    for w in range(3):
        pieces = masked[:, word_index == w]
        assert (pieces.all(dim=1) | ~pieces.any(dim=1)).all()  # a word is removed whole or not at all
    assert len({tuple(r) for r in ids.tolist()}) == len(ids)  # repeated perturbations ran once


def test_lime_and_soft_attention_rank_the_marker_first(task, marker_task):
    model, tokenizer, test, items = task
    lime = lime_word_scores(model, items[:20], tokenizer, n_samples=96, perturbations_per_eval=96, seed=0)
    soft = model_scores(model, items, tokenizer, 64).words
    assert marker_first(test[:20], lime, marker_task["marker"]) >= 0.8
    assert marker_first(test, soft, marker_task["marker"]) >= 0.8


def test_ig_ranks_the_marker_first_and_word_is_max_over_pieces(task, marker_task):
    model, tokenizer, test, items = task
    scores = ig_word_scores(model, items, tokenizer, n_steps=16, batch_size=20)
    assert marker_first(test, scores, marker_task["marker"]) >= 0.8
    scores = ig_word_scores(model, items[:3], tokenizer, n_steps=16, batch_size=3)     # the same padding
    batch = collate(items[:3], tokenizer)
    pieces = ig_piece_scores(model, batch, tokenizer.mask_token_id, n_steps=16)       # [3, T]
    for row, item in enumerate(items[:3]):
        for w in range(item.n_words):
            of_word = pieces[row][batch["word_index"][row] == w]
            assert scores[row][w] == pytest.approx(float(of_word.max()), abs=1e-5)


def test_ig_baseline_is_the_mask_token_and_attributions_are_complete(task):
    model, tokenizer, _, items = task
    batch = collate(items[:4], tokenizer)
    pieces = ig_piece_scores(model, batch, tokenizer.mask_token_id, n_steps=300)
    prob = PositiveProbability(model)
    with torch.no_grad():
        p_input = prob(batch["input_ids"], batch["attention_mask"], batch["word_index"])
        baseline = removed_ids(batch["input_ids"], batch["word_index"], tokenizer.mask_token_id)
        p_base = prob(baseline, batch["attention_mask"], batch["word_index"])
    np.testing.assert_allclose(pieces.sum(dim=1), p_input - p_base, atol=2e-3)
    assert (pieces[batch["word_index"] == NO_WORD] == 0).all()  # special tokens and padding: no attribution


def test_lime_needs_a_mask_token_ig_falls_back_to_pad(task):
    model, tokenizer, _, items = task
    no_mask = copy.deepcopy(tokenizer)
    no_mask.mask_token = None
    with pytest.raises(InputError, match="no mask token"):
        lime_word_scores(model, items[:1], no_mask, n_samples=16)
    assert len(ig_word_scores(model, items[:2], no_mask, n_steps=4)) == 2
