"""Training and evaluation as functions of (config, model, data) that return metric dicts."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import torch
from transformers import get_linear_schedule_with_warmup
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import Encoded, batches, encode, mask_words
from zs_core.config import RunConfig
from zs_core.data import Sentence, read_tsv
from zs_core.errors import InputError
from zs_core.evaluation import list_rows, random_scores, wide
from zs_core.metrics import sentence_metrics
from zs_core.scores import predict


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run cannot go on."""


@dataclass
class TrainState:
    """Where a run stands at its last dev evaluation, enough to go on from there exactly (with the model's
    weights, saved beside it): optimizer steps done, the epoch and the batches of it done, the optimizer's
    and scheduler's state, the RNG states (dropout, word masking). ``train`` fills it at every evaluation
    and, given one with ``step`` > 0, starts where it stands. Plain values and tensors: ``torch.save`` /
    ``torch.load(weights_only=True)`` round-trip it."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    optimizer: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)


def evaluate(
    model: torch.nn.Module, items: Sequence[Encoded], sentences: Sequence[Sentence],
    tokenizer: PreTrainedTokenizerBase, cfg: RunConfig, device: str | torch.device = "cpu",
    threshold: float | None = None, calibrate: bool = True,
) -> dict[str, float]:
    """Predict, then ``split_metrics``."""
    probs, words = predict(model, items, tokenizer, cfg.eval.per_device_eval_batch_size, device)
    return split_metrics(sentences, probs, words, cfg, threshold, calibrate)


def split_metrics(
    sentences: Sequence[Sentence], probs: Sequence[float], words: Sequence[Sequence[float]] | None,
    cfg: RunConfig, threshold: float | None = None, calibrate: bool = True,
) -> dict[str, float]:
    """Sentence metrics at 0.5 and the soft-attention rows of ``evaluation`` as leaderboard columns.

    ``threshold=None, calibrate=True`` calibrates on these very sentences (dev); to score test pass dev's
    threshold and ``calibrate=False`` (test never picks its own threshold).
    Keys: sent_*, n_sentences, tok_* (at importance_threshold; map, auroc, corr need none), tok_cal_*
    (at the calibrated threshold, tok_cal_threshold).
    """
    out = {f"sent_{k}": v for k, v in sentence_metrics([s.label for s in sentences], probs).items()}
    out["n_sentences"] = len(sentences)
    if words is None:
        return out
    gold = [list(s.gold) for s in sentences]
    dev = (gold, words) if threshold is None and calibrate else None
    rows = list_rows(cfg.model.method, gold, words, dev=dev, fixed=cfg.eval.importance_threshold,
                     top_k=cfg.eval.top_count, dev_threshold=threshold)
    return {**out, **wide(rows, "")}


def random_baseline(splits: dict[str, list[Sentence]], cfg: RunConfig) -> dict[str, float]:
    """dev/* and test/* metrics of ``evaluation.random_scores`` (the floor of every table); test at dev's
    calibrated threshold."""
    out: dict[str, float] = {}
    threshold = None
    for split in ("dev", "test"):
        probs, words = random_scores(splits[split])
        metrics = split_metrics(splits[split], probs, words, cfg, threshold, calibrate=split == "dev")
        threshold = metrics.get("tok_cal_threshold")
        out.update({f"{split}/{k}": v for k, v in metrics.items()})
    return out


def train(
    cfg: RunConfig, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, list[Sentence]], device: str | torch.device = "cpu", state: TrainState | None = None,
) -> Iterator[dict[str, float]]:
    """Fine-tune ``model`` on splits["train"]; at every dev evaluation yield train loss, dev metrics, seconds.

    Evaluations come after every epoch, or with ``eval_steps`` = N every N optimizer steps and after the
    last one. ``step`` counts optimizer steps; ``epoch`` is the (fractional) number of epochs done.
    The model holds the evaluated weights while the caller handles the yielded dict (save it if best).
    ``state``, when given, is kept up to date at every evaluation; one with step > 0 (and the model holding
    the weights of that evaluation) resumes the run there: on CPU the rest of the run is the same as an
    uninterrupted one's. Raises NonFiniteLoss as soon as a loss is NaN or infinite.
    """
    tc = cfg.train
    torch.manual_seed(tc.seed)  # dropout and masking draws; with a fixed seed a CPU run repeats exactly
    targets = (load_token_targets(cfg, splits["train"]) if cfg.model.is_seq_class
               else [list(map(float, s.gold)) for s in splits["train"]])  # the ceiling learns the gold labels
    train_items, truncated = encode(splits["train"], tokenizer, cfg.data.max_seq_length, targets, cfg.data.lowercase)
    dev_items, dev_truncated = encode(splits["dev"], tokenizer, cfg.data.max_seq_length, lowercase=cfg.data.lowercase)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    n_batches = math.ceil(len(train_items) / tc.per_device_train_batch_size)
    steps_per_epoch = math.ceil(n_batches / tc.gradient_accumulation_steps)
    total_steps = steps_per_epoch * tc.num_train_epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(tc, len(train_items), total_steps),
                                                total_steps)
    mask_rng = torch.Generator().manual_seed(tc.seed)
    every = tc.eval_steps or steps_per_epoch
    state = state if state is not None else TrainState()
    if state.step:  # resume: the model holds this evaluation's weights already
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        torch.set_rng_state(state.rng["torch"])
        mask_rng.set_state(state.rng["mask"])
    step, losses, sentences, start = state.step, [], 0, time.perf_counter()
    first_epoch, first_batch = state.epoch, state.batch
    for epoch in range(first_epoch, tc.num_train_epochs):
        model.train()
        skip = first_batch if epoch == first_epoch else 0
        stream = batches(train_items, tokenizer, tc.per_device_train_batch_size, shuffle=True,
                         group_by_length=tc.group_by_length, seed=tc.seed * 1000 + epoch, skip=skip)
        for i, (_, batch) in enumerate(stream, start=skip):
            if cfg.data.do_mask_words and cfg.data.mask_prob > 0:
                batch = mask_words(batch, tokenizer.mask_token_id, cfg.data.mask_prob, mask_rng)
            batch = {k: v.to(device) for k, v in batch.items()}
            _, loss = model(batch, batch["labels"])
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}")
            (loss / tc.gradient_accumulation_steps).backward()
            losses.append(loss.item())
            sentences += len(batch["labels"])
            if (i + 1) % tc.gradient_accumulation_steps and i + 1 != n_batches:
                continue
            if tc.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % every and step != total_steps:
                continue
            train_seconds = time.perf_counter() - start
            done = i + 1 == n_batches  # the epoch's last batch: the next run starts the next epoch
            state.step, state.epoch, state.batch = step, epoch + done, 0 if done else i + 1
            state.optimizer, state.scheduler = optimizer.state_dict(), scheduler.state_dict()
            state.rng = {"torch": torch.get_rng_state(), "mask": mask_rng.get_state()}
            dev = evaluate(model, dev_items, splits["dev"], tokenizer, cfg, device)
            yield {
                "epoch": step / steps_per_epoch,
                "step": step,
                "train/loss": sum(losses) / max(len(losses), 1),
                "train/sentences_per_s": sentences / train_seconds,
                "train/truncated_words": truncated,
                **{f"dev/{k}": v for k, v in dev.items()},
                "dev/truncated_words": dev_truncated,
                "seconds": time.perf_counter() - start,
            }
            model.train()
            losses, sentences, start = [], 0, time.perf_counter()


def warmup_steps(tc, n_sentences: int, total_steps: int) -> int:
    """Warm-up length in optimizer steps: warmup_ratio of them, or the seed's arithmetic (``sentences``),
    warmup_ratio x (sentences // accumulation) x epochs, longer than the run when batches hold > 10 sentences."""
    if tc.warmup_unit == "sentences":
        return int(tc.warmup_ratio * (n_sentences // tc.gradient_accumulation_steps * tc.num_train_epochs))
    return int(tc.warmup_ratio * total_steps)


def make_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights without weight decay (as the seed's HF Trainer)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.train.learning_rate, eps=cfg.train.adam_epsilon)


def load_token_targets(cfg: RunConfig, train: Sequence[Sentence]) -> list[list[float]] | None:
    """Word-score targets for the beta loss from ``token_input_dir/token_input_filename`` (or None); a
    ``{mode}`` in the file name is the split, ``train``, as in the seed."""
    tc = cfg.train
    if not (tc.token_input_dir and tc.token_input_filename and cfg.model.soft_attention_beta):
        return None
    path = Path(tc.token_input_dir) / tc.token_input_filename.replace("{mode}", "train")  # the seed's placeholder
    scored = read_tsv(path)
    if len(scored) != len(train):
        raise InputError(f"{path}: {len(scored)} sentences, but the train split has {len(train)}")
    targets = []
    for i, (pred, gold) in enumerate(zip(scored, train)):
        if pred.words != gold.words:
            raise InputError(f"{path}: sentence {i + 1} does not hold the train split's words")
        values = [float(v) for v in pred.labels]
        if tc.normalise_preds:
            values = [max(v, 0.0) for v in values]
            total = sum(values)
            values = [v / total for v in values] if total > 0 else values
        targets.append(values)
    return targets
