"""A trained classifier in your own code: load a checkpoint and score new, unlabelled text.

    from zs_core.inference import load_classifier, score_words

    model, tokenizer, cfg = load_classifier("runs/demo/tune/train_trial_.../checkpoint_000001")
    for words, (prob, scores) in zip(sentences, score_words(model, tokenizer, cfg, sentences)):
        ...  # prob: P(positive sentence); scores: one score per word (None for a plain [CLS] classifier)

``sentences`` are lists of words (``line.split()``); the scores follow the token-score protocol (a word's score
is the max over its pieces; a word cut off by max_seq_length scores 0). A checkpoint's ``encoder/`` folder is a
plain Hugging Face model: ``transformers.AutoModel.from_pretrained(CKPT / "encoder")`` loads the encoder alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from zs_core.batching import encode
from zs_core.checkpoint import load_checkpoint
from zs_core.config import RunConfig
from zs_core.data import Sentence
from zs_core.scores import model_scores


def load_classifier(path: str | Path, attentions: bool = False):
    """-> (model in eval mode, tokenizer, RunConfig) of a sweep.run checkpoint folder; ``attentions=True``
    loads eager attention, which the encoder's attention heads need."""
    return load_checkpoint(path, attentions=attentions)


def score_words(model: torch.nn.Module, tokenizer, cfg: RunConfig, sentences: Sequence[Sequence[str]],
                batch_size: int | None = None,
                device: str | torch.device = "cpu") -> list[tuple[float, list[float] | None]]:
    """(sentence probability, word scores or None) per sentence of words, in order; encoded as the model was
    trained (its max_seq_length and lowercase)."""
    items, _ = encode([Sentence(tuple(words), None) for words in sentences], tokenizer, cfg.data.max_seq_length,
                      lowercase=cfg.data.lowercase)
    model.to(device)
    scored = model_scores(model, items, tokenizer, batch_size or cfg.eval.per_device_eval_batch_size, device)
    words = scored.words if scored.words is not None else [None] * len(items)
    return list(zip(scored.probs, words))
