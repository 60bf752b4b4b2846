"""Token scores per word: the soft-attention head, and every attention head from one pass per batch."""
from __future__ import annotations

import math
from typing import Iterator, NamedTuple, Sequence

import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import Encoded, batches, pieces_to_words
from zs_core.errors import InputError
from zs_core.protocol import POOLINGS


class ModelScores(NamedTuple):
    probs: list[float]                  # sentence probability per sentence
    words: list[list[float]] | None     # word scores per sentence (None: a model without word scores)
    loss: float                         # the training objective over these sentences (their labels, 0 if none)


@torch.no_grad()
def model_scores(
    model: torch.nn.Module, items: Sequence[Encoded], tokenizer: PreTrainedTokenizerBase,
    batch_size: int, device: torch.device | str = "cpu",
) -> ModelScores:
    """A trained model's sentence probabilities, word scores (max over each word's pieces) and loss, in the
    order of ``items``, from one forward pass per batch (eval mode: no dropout)."""
    model.eval()
    probs: list[float] = [0.0] * len(items)
    words: list[list[float]] = [[] for _ in items]
    has_tokens, loss_sum = True, 0.0
    for idx, batch in batches(items, tokenizer, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        # a token classifier's loss needs token targets (the gold labels): without them there is none
        labelled = model.cfg.is_seq_class or "token_targets" in batch
        outputs, loss = model(batch, batch["labels"] if labelled else None)
        loss_sum += float(loss) * len(idx) if loss is not None else math.nan
        sentence = outputs["sentence_scores"].float().cpu().tolist()
        a = outputs["token_scores"]
        if a is None:
            has_tokens = False
        else:
            n_words = max(items[i].n_words for i in idx)
            per_word = pieces_to_words(a.float(), batch["word_index"], n_words).cpu()   # [B, W]
        for row, i in enumerate(idx):
            probs[i] = sentence[row]
            if a is not None:
                words[i] = per_word[row, : items[i].n_words].tolist()
    return ModelScores(probs, words if has_tokens else None, loss_sum / max(len(items), 1))


def head_piece_scores(attentions: Sequence[torch.Tensor], attention_mask: torch.Tensor,
                      poolings: Sequence[str] = POOLINGS) -> torch.Tensor:
    """Every head's piece scores from one pass's attention maps.

    attentions: L tensors [B, H, T(query), T(key)]; attention_mask [B, T]. Returns [B, P, L, H, T]:
    ``received`` = mean over real (non-padding) query rows of attention[query, piece]; ``cls`` = row 0.
    """
    query = attention_mask.to(attentions[0].dtype)                             # [B, T]
    n_query = query.sum(dim=1).clamp_min(1.0)                                   # [B]
    per_pooling = []
    for pooling in poolings:
        if pooling == "received":
            layers = [torch.einsum("bhqk,bq->bhk", att, query) / n_query[:, None, None] for att in attentions]
        elif pooling == "cls":
            layers = [att[:, :, 0, :] for att in attentions]
        else:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        per_pooling.append(torch.stack(layers, dim=1))                          # [B, L, H, T]
    return torch.stack(per_pooling, dim=1)                                      # [B, P, L, H, T]


@torch.no_grad()
def iter_head_scores(
    encoder: PreTrainedModel, items: Sequence[Encoded], tokenizer: PreTrainedTokenizerBase,
    batch_size: int, device: torch.device | str = "cpu", poolings: Sequence[str] = POOLINGS,
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Stream (indices into items, word scores [B, P, L, H, W]) with ONE forward pass per batch.

    The encoder must be loaded with eager attention (``load_encoder(..., attentions=True)``). W is the
    longest sentence of the batch in words; positions past a sentence's own n_words are 0 padding.
    """
    encoder.eval()
    for idx, batch in batches(items, tokenizer, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise ValueError(f"{type(encoder).__name__} returned no attention maps (load it with eager attention)")
        pieces = head_piece_scores(out.attentions, batch["attention_mask"], poolings)     # [B, P, L, H, T]
        n_words = max(items[i].n_words for i in idx)
        yield idx, pieces_to_words(pieces.float(), batch["word_index"], n_words)          # [B, P, L, H, W]


def head_word_scores(
    encoder: PreTrainedModel, items: Sequence[Encoded], tokenizer: PreTrainedTokenizerBase, layer: int,
    head: int, pooling: str = "received", batch_size: int = 64, device: torch.device | str = "cpu",
) -> list[list[float]]:
    """One attention head's word scores (layer and head count from 0), from the all-heads single pass."""
    if pooling not in POOLINGS:
        raise InputError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    out: list[list[float]] = [[] for _ in items]
    for idx, words in iter_head_scores(encoder, items, tokenizer, batch_size, device, poolings=(pooling,)):
        chosen = words[:, 0, layer, head].cpu()                                         # [B, W]
        for row, i in enumerate(idx):
            out[i] = chosen[row, : items[i].n_words].tolist()
    return out

