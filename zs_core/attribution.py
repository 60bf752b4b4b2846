"""Word scores from attributions of the positive-class probability, through captum: LIME and integrated
gradients. Both score the sentence classifier's P(positive) (``sentence_scores``), whatever its head.

LIME (the paper's protocol, LIME's text sampling): each word is one interpretable feature (captum's
``feature_mask`` from the word alignment); a removed word has every piece replaced by the tokenizer's mask
token (captum ``baselines``); special tokens are never removed. ``n_samples`` perturbations per sentence
(the first is the unperturbed sentence, each other removes a number of words drawn uniformly from 1..W and
then which words uniformly), weighted by LIME's text kernel (cosine distance of the binary word vector to the
all-ones vector, x100, kernel width 25) and fitted by ridge regression (alpha 1); a word's score is its
coefficient. Draws come from a generator seeded by (seed, sentence index): the same seed gives the same
scores, whatever the batching. Perturbations go through the model ``perturbations_per_eval`` at a time,
padded only to the sentence's own length; identical perturbations run through the model once.

Integrated gradients: captum ``LayerIntegratedGradients`` on the encoder's input (word-piece) embedding;
the baseline is the mask token's embedding on every word piece (the pad token's where the tokenizer has no
mask token), special tokens and padding kept as they are. A piece's score is its attribution summed over
the embedding dimension; a word's score is the max over its pieces (the token-score protocol).
Words cut off by max_seq_length score 0 in both.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import LayerIntegratedGradients, Lime
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import NO_WORD, Encoded, batches, pieces_to_words
from zs_core.errors import InputError

LIME_KERNEL_WIDTH = 25.0  # LIME's text explainer: exp kernel on cosine distance x 100
LIME_RIDGE_ALPHA = 1.0    # LIME's default ridge regression

Progress = Callable[[int], None]  # called with the number of sentences just finished


class PositiveProbability:
    """captum's forward: (input_ids [N, T], attention_mask [N, T], word_index [N, T]) -> P(positive) [N].

    ``cache=True`` (LIME, no gradients): rows already seen since the last ``reset()`` are not run again;
    the key is the row's input_ids alone, so reset between sentences (mask and alignment fixed within one).
    """

    def __init__(self, model: torch.nn.Module, cache: bool = False):
        self.model = model
        self.cache: dict[bytes, float] | None = {} if cache else None

    def reset(self) -> None:
        if self.cache is not None:
            self.cache.clear()

    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            word_index: torch.Tensor) -> torch.Tensor:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "word_index": word_index}
        return self.model(batch)[0]["sentence_scores"]                                  # [N]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 word_index: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            return self.run(input_ids, attention_mask, word_index)
        keys = [row.tobytes() for row in input_ids.cpu().numpy()]
        todo: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            if key not in self.cache and key not in todo:
                todo[key] = row
        if todo:
            rows = torch.tensor(list(todo.values()), device=input_ids.device)
            probs = self.run(input_ids[rows], attention_mask[rows], word_index[rows]).float().cpu().tolist()
            self.cache.update(zip(todo, probs))
        return torch.tensor([self.cache[k] for k in keys], device=input_ids.device)       # [N]


def lime_masks(n_words: int, n_samples: int, seed: int, index: int) -> torch.Tensor:
    """[n_samples, n_words] 0/1 (1 = word kept): row 0 keeps every word; each other row removes k words,
    k uniform in 1..n_words, the k words uniform among all. A pure function of (seed, index)."""
    rng = np.random.default_rng([seed, index])
    n_removed = rng.integers(1, n_words + 1, size=n_samples - 1)                       # [S-1]
    rank = rng.random((n_samples - 1, n_words)).argsort(axis=1).argsort(axis=1)        # [S-1, W]
    keep = rank >= n_removed[:, None]
    return torch.from_numpy(np.vstack([np.ones((1, n_words), dtype=bool), keep])).long()


def lime_text_kernel(original_inp, perturbed_inp, perturbed_interpretable_inp, **kwargs) -> float:
    """LIME's text kernel on the binary word vector z: d = 100 * cosine distance(z, ones);
    weight = sqrt(exp(-d^2 / width^2)). An empty z has distance 1 (cosine similarity 0)."""
    z = perturbed_interpretable_inp                                                     # [1, W]
    distance = 100.0 * (1.0 - math.sqrt(int(z.sum()) / z.numel()))
    return math.sqrt(math.exp(-(distance ** 2) / LIME_KERNEL_WIDTH ** 2))


def _replacement_id(tokenizer: PreTrainedTokenizerBase, method: str, use_pad: bool = False) -> int:
    if use_pad:
        if tokenizer.pad_token_id is None:
            raise InputError(f"{method}: the model's tokenizer has no pad token to replace removed words with")
        return int(tokenizer.pad_token_id)
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id)
    if method == "ig" and tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    what = "mask token" if method == "lime" else "mask or pad token"
    raise InputError(f"{method}: the model's tokenizer has no {what} to replace removed words with")


def removed_ids(input_ids: torch.Tensor, word_index: torch.Tensor, replacement: int) -> torch.Tensor:
    """input_ids with every word piece replaced by ``replacement``; special tokens and padding kept."""
    return torch.where(word_index != NO_WORD, torch.full_like(input_ids, replacement), input_ids)


def lime_word_scores(
    model: torch.nn.Module, items: Sequence[Encoded], tokenizer: PreTrainedTokenizerBase,
    n_samples: int = 4096, perturbations_per_eval: int = 512, seed: int = 0,
    device: torch.device | str = "cpu", progress: Progress | None = None, cache: bool = True,
    replace_with_pad: bool = False,
) -> list[list[float]]:
    """LIME word scores toward P(positive), one list per item (its n_words, cut-off words 0).

    A removed word's pieces become the mask token, or the pad token with ``replace_with_pad`` (the seed's
    ``lime_mask_string_use_pad``)."""
    if n_samples < 2:
        raise InputError(f"LIME needs at least 2 samples per sentence, got {n_samples}")
    mask_id = _replacement_id(tokenizer, "lime", replace_with_pad)
    model.eval()
    forward = PositiveProbability(model, cache=cache)
    out = []
    for index, item in enumerate(items):
        input_ids = torch.tensor([item.input_ids], device=device)                       # [1, T]
        word_index = torch.tensor([item.word_index], device=device)                     # [1, T]
        n_features = int(word_index.max().item()) + 1
        if n_features <= 0:  # no word kept at all
            out.append([0.0] * item.n_words)
            continue
        masks = lime_masks(n_features, n_samples, seed, index).to(device)              # [S, W]

        def perturb(original, **kwargs):  # captum draws the interpretable samples from this generator
            for row in masks:
                yield row.unsqueeze(0)                                                  # [1, W]

        lime = Lime(forward, interpretable_model=SkLearnRidge(alpha=LIME_RIDGE_ALPHA),
                    similarity_func=lime_text_kernel, perturb_func=perturb)
        forward.reset()
        with torch.no_grad():
            coefs = lime.attribute(
                input_ids, baselines=removed_ids(input_ids, word_index, mask_id),
                additional_forward_args=(torch.ones_like(input_ids), word_index),
                feature_mask=word_index.clamp(min=0),  # special tokens join word 0 but never change
                n_samples=n_samples, perturbations_per_eval=perturbations_per_eval,
                return_input_shape=False,
            )
        scores = coefs.flatten().float().cpu().tolist()
        out.append(scores[: item.n_words] + [0.0] * (item.n_words - len(scores)))
        if progress is not None:
            progress(1)
    return out


def ig_piece_scores(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], replacement: int, n_steps: int = 50,
    internal_batch_size: int | None = None,
) -> torch.Tensor:
    """[B, T] integrated-gradients attribution of each piece toward P(positive), summed over the embedding."""
    lig = LayerIntegratedGradients(PositiveProbability(model), model.encoder.get_input_embeddings())
    with torch.enable_grad():
        attributions = lig.attribute(
            batch["input_ids"], baselines=removed_ids(batch["input_ids"], batch["word_index"], replacement),
            additional_forward_args=(batch["attention_mask"], batch["word_index"]),
            n_steps=n_steps, internal_batch_size=internal_batch_size,
        )                                                                               # [B, T, D]
    return attributions.sum(dim=-1).detach()                                           # [B, T]


def ig_word_scores(
    model: torch.nn.Module, items: Sequence[Encoded], tokenizer: PreTrainedTokenizerBase,
    n_steps: int = 50, batch_size: int = 8, internal_batch_size: int = 256,
    device: torch.device | str = "cpu", progress: Progress | None = None,
) -> list[list[float]]:
    """Integrated-gradients word scores (max over a word's pieces), one list per item."""
    replacement = _replacement_id(tokenizer, "ig")
    model.eval()
    out: list[list[float]] = [[] for _ in items]
    for idx, batch in batches(items, tokenizer, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        pieces = ig_piece_scores(model, batch, replacement, n_steps, internal_batch_size)   # [B, T]
        n_words = max(items[i].n_words for i in idx)
        words = pieces_to_words(pieces.float(), batch["word_index"], n_words).cpu()     # [B, W]
        for row, i in enumerate(idx):
            out[i] = words[row, : items[i].n_words].tolist()
        if progress is not None:
            progress(len(idx))
    return out

