"""Word <-> piece alignment (the fast tokenizer's ``word_ids()``), batches, and piece -> word scores."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from zs_core.data import Sentence

NO_WORD = -1  # word index of special tokens and padding


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]            # [T] pieces, special tokens included
    word_index: list[int]           # [T] word of each piece, NO_WORD for special tokens
    n_words: int                    # words in the sentence, truncated ones included
    label: float                    # sentence label (0 for unlabelled sentences)
    targets: list[float] | None     # [n_words] token targets for the beta loss, or None


def encode(
    sentences: Sequence[Sentence],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    targets: Sequence[Sequence[float]] | None = None,
    lowercase: bool = False,
) -> tuple[list[Encoded], int]:
    """Tokenize pre-split words (lowercased first when asked); returns the encodings and how many words
    were cut off by max_seq_length."""
    if not sentences:
        return [], 0
    words = [[w.lower() for w in s.words] if lowercase else list(s.words) for s in sentences]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_seq_length)
    out, n_truncated = [], 0
    for i, sentence in enumerate(sentences):
        word_index = [NO_WORD if w is None else w for w in enc.word_ids(i)]
        if len(word_index) >= max_seq_length:  # only a sentence that fills max_seq_length can have been cut
            full = tokenizer(words[i], is_split_into_words=True, add_special_tokens=False)
            n_truncated += len(set(full.word_ids()) - set(word_index))
        label = float(sentence.label) if sentence.labels is not None else 0.0
        out.append(Encoded(
            input_ids=list(enc["input_ids"][i]), word_index=word_index, n_words=len(sentence.words),
            label=label, targets=None if targets is None else [float(t) for t in targets[i]],
        ))
    return out, n_truncated


def collate(items: Sequence[Encoded], tokenizer: PreTrainedTokenizerBase) -> dict[str, torch.Tensor]:
    """Pad to the longest sentence of the batch (never to max_seq_length)."""
    padded = tokenizer.pad({"input_ids": [e.input_ids for e in items]}, return_tensors="pt")
    length = padded["input_ids"].shape[1]
    word_index = torch.full((len(items), length), NO_WORD, dtype=torch.long)         # [B, T]
    for row, e in enumerate(items):
        word_index[row, : len(e.word_index)] = torch.tensor(e.word_index)
    batch = {
        "input_ids": padded["input_ids"],                                              # [B, T]
        "attention_mask": padded["attention_mask"],                                    # [B, T]
        "word_index": word_index,                                                      # [B, T]
        "labels": torch.tensor([e.label for e in items], dtype=torch.float),           # [B]
    }
    if items[0].targets is not None:
        first = first_piece_mask(word_index)                                           # [B, T]
        target = torch.zeros(len(items), length)                                       # [B, T]
        for row, e in enumerate(items):
            idx = word_index[row][first[row]]
            target[row, first[row]] = torch.tensor(e.targets, dtype=torch.float)[idx]
        batch["token_targets"], batch["target_mask"] = target, first
    return batch


def first_piece_mask(word_index: torch.Tensor) -> torch.Tensor:
    """[B, T] True on the first piece of every word."""
    prev = torch.cat([torch.full_like(word_index[:, :1], NO_WORD), word_index[:, :-1]], dim=1)
    return (word_index != NO_WORD) & (word_index != prev)


def batches(
    items: Sequence[Encoded],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    shuffle: bool = False,
    group_by_length: bool = False,
    seed: int = 0,
    skip: int = 0,
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Yield (indices into items, batch). Evaluation: sorted by length, indices restore the order.

    Training: ``group_by_length`` uses transformers' LengthGroupedSampler (similar lengths share a batch,
    batch order random); otherwise a plain shuffle. Both are a pure function of ``seed``. ``skip``: leave
    out the first ``skip`` batches (a resumed epoch).
    """
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(e.input_ids) for e in items]
    if shuffle and group_by_length:
        order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    elif shuffle:
        order = torch.randperm(len(items), generator=generator).tolist()
    else:
        order = sorted(range(len(items)), key=lambda i: lengths[i])
    for start in range(skip * batch_size, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, collate([items[i] for i in idx], tokenizer)


def mask_words(
    batch: dict[str, torch.Tensor], mask_token_id: int, prob: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Replace every piece of a randomly chosen word (each with probability ``prob``) by the mask token."""
    word_index = batch["word_index"]
    n_words = int(word_index.max().item()) + 1 if word_index.numel() else 0
    chosen = torch.rand(word_index.shape[0], max(n_words, 1), generator=generator) < prob   # [B, W]
    hit = (word_index != NO_WORD) & chosen.gather(1, word_index.clamp(min=0))                # [B, T]
    return {**batch, "input_ids": batch["input_ids"].masked_fill(hit, mask_token_id)}


def pieces_to_words(piece_scores: torch.Tensor, word_index: torch.Tensor, n_words: int) -> torch.Tensor:
    """Word score = max over the word's pieces; words without a piece (cut off) score 0.

    piece_scores: [B, ..., T]; word_index: [B, T]; returns [B, ..., n_words].
    """
    lead = piece_scores.shape[1:-1]
    valid = word_index != NO_WORD                                                     # [B, T]
    index = torch.where(valid, word_index, torch.full_like(word_index, n_words))      # spill column n_words
    index = index.view(index.shape[0], *([1] * len(lead)), -1).expand_as(piece_scores)
    out = torch.full((*piece_scores.shape[:-1], n_words + 1), float("-inf"), dtype=piece_scores.dtype,
                     device=piece_scores.device)
    out = out.scatter_reduce(-1, index, piece_scores, reduce="amax", include_self=True)[..., :n_words]
    return torch.where(torch.isneginf(out), torch.zeros_like(out), out)
