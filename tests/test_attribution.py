"""zs_core.attribution: LIME and integrated gradients on a tiny model trained on an easy made-up task.

The task: positive sentences hold one marker word ("zebra"), labelled ``i``; every other word is ``c``.
"""
from __future__ import annotations

import copy
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from zs_core.attribution import (PositiveProbability, ig_piece_scores, ig_word_scores, lime_masks,
                                 lime_word_scores, removed_ids)
from zs_core.batching import NO_WORD, collate, encode
from zs_core.checkpoint import load_checkpoint, save_checkpoint
from zs_core.config import build_config
from zs_core.data import DataSpec, load_splits
from zs_core.encoders import load_tokenizer
from zs_core.errors import InputError
from zs_core.model import build_model
from zs_core.scores import predict
from zs_core.train import train

MARKER = "zebra"
FILLER = "the a cat dog sat on mat house tree car road big small red blue green runs walks".split()
_TASK: dict[str, Path] = {}  # one trained model per test session (test_predict_evaluate shares it)


def write_marker_split(path: Path, n: int, rng: random.Random) -> None:
    """n sentences of 4-8 filler words; every other one has the marker in a random place."""
    lines = []
    for k in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 8))]
        labels = ["c"] * len(words)
        if k % 2 == 0:
            j = rng.randrange(len(words))
            words[j], labels[j] = MARKER, "i"
        lines += [f"{w}\t{lab}" for w, lab in zip(words, labels)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def marker_task(tmp_path_factory) -> dict[str, Path]:
    """{"data": folder with train/dev/test.tsv, "checkpoint": a tiny-random soft-attention model on it}."""
    if not _TASK:
        root = tmp_path_factory.mktemp("marker")
        rng = random.Random(0)
        for split, n in (("train", 160), ("dev", 20), ("test", 40)):
            write_marker_split(root / f"{split}.tsv", n, rng)
        cfg = build_config({"model_name": "tiny-random", "num_train_epochs": 3, "learning_rate": 1e-3,
                            "warmup_ratio": 0.0, "attention_evidence_size": 16, "final_hidden_layer_size": 16},
                           "marker task")
        model, tokenizer = build_model(cfg.model, 1), load_tokenizer("tiny-random")
        for _ in train(cfg, model, tokenizer, load_splits(DataSpec(dataset=None, dir=str(root),
                                                                   positive_labels=("i",)))):
            pass
        _TASK.update(data=root, checkpoint=save_checkpoint(root / "checkpoint", model, tokenizer, cfg))
    return _TASK


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    paths = marker_task(tmp_path_factory)
    model, tokenizer, _ = load_checkpoint(paths["checkpoint"])
    test = load_splits(DataSpec(dataset=None, dir=str(paths["data"]), positive_labels=("i",)), ("test",))["test"]
    items, _ = encode(test, tokenizer, 128)
    return model, tokenizer, test, items


def marker_first(sentences, scores) -> float:
    """Share of positive sentences whose top-scored word is the marker."""
    hits = [int(np.argmax(s)) == x.words.index(MARKER) for x, s in zip(sentences, scores) if MARKER in x.words]
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


def test_lime_and_soft_attention_rank_the_marker_first(task):
    model, tokenizer, test, items = task
    lime = lime_word_scores(model, items[:20], tokenizer, n_samples=96, perturbations_per_eval=96, seed=0)
    _, soft = predict(model, items, tokenizer, 64)
    assert marker_first(test[:20], lime) >= 0.8
    assert marker_first(test, soft) >= 0.8


def test_ig_ranks_the_marker_first_and_word_is_max_over_pieces(task):
    model, tokenizer, test, items = task
    scores = ig_word_scores(model, items, tokenizer, n_steps=16, batch_size=20)
    assert marker_first(test, scores) >= 0.8
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
