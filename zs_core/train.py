"""Training and evaluation as functions of (config, model, data) that return metric dicts."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
from transformers import get_linear_schedule_with_warmup
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.batching import Encoded, batches, encode, mask_words
from zs_core.config import RunConfig
from zs_core.data import Sentence
from zs_core.deletion import deletion
from zs_core.evaluation import labelled, split_metrics
from zs_core.predictions import token_targets
from zs_core.protocol import (
    DELETION,
    EPOCH,
    SECONDS,
    SENTENCES_PER_S,
    STEP,
    TOK_CAL_THRESHOLD,
    TRAIN,
    TRAIN_LOSS,
    TRUNCATED,
    Rule,
    better,
    model_method,
    on_dev,
    on_test,
)
from zs_core.scores import model_scores
from zs_core.state import TrainState


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run cannot go on."""


def evaluate(
    model: torch.nn.Module, items: Sequence[Encoded], sentences: Sequence[Sentence],
    tokenizer: PreTrainedTokenizerBase, cfg: RunConfig, device: str | torch.device = "cpu",
    threshold: float | None = None, calibrate: bool = True,
) -> dict[str, float]:
    """One split's columns (``evaluation.split_metrics``, and with word scores ``deletion``) for a trained model;
    ``threshold``: dev's calibrated threshold for a split that must not pick its own (test, ``calibrate=False``)."""
    scored = model_scores(model, items, tokenizer, cfg.eval.per_device_eval_batch_size, device)
    words = (x for w in scored.words or () for x in w)
    if not (all(map(math.isfinite, scored.probs)) and all(map(math.isfinite, words))):
        # the weights diverged although the training loss stayed finite
        raise NonFiniteLoss("the model's scores are NaN or infinite (its weights diverged)")
    metrics = split_metrics(model_method(cfg.model), sentences, scored.probs, scored.words,
                            cfg.eval.importance_threshold, cfg.eval.top_count, scored.loss, threshold, calibrate)
    if scored.words is not None:
        metrics[DELETION] = deletion(model, items, scored.words, tokenizer,
                                     cfg.eval.per_device_eval_batch_size, device)
    return metrics


class OwnRNG:
    """A run's own torch RNG (dropout draws; CPU, and CUDA where there is one), seeded once: swapped in while
    the run computes and out while its caller handles a yielded evaluation, so the caller's global RNG is
    never changed. ``inner`` is the CPU state (what a checkpoint saves to resume)."""

    def __init__(self, seed: int):
        self.cuda = torch.cuda.is_available()
        with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if self.cuda else []):
            torch.manual_seed(seed)
            self.inner, self.inner_cuda = torch.get_rng_state(), self._cuda_state()
        self.outer = self.outer_cuda = None

    def _cuda_state(self):
        return torch.cuda.get_rng_state_all() if self.cuda else None

    def __enter__(self) -> OwnRNG:
        self.outer, self.outer_cuda = torch.get_rng_state(), self._cuda_state()
        torch.set_rng_state(self.inner)
        if self.cuda:
            torch.cuda.set_rng_state_all(self.inner_cuda)
        return self

    def __exit__(self, *exc) -> None:
        self.inner, self.inner_cuda = torch.get_rng_state(), self._cuda_state()
        torch.set_rng_state(self.outer)
        if self.cuda:
            torch.cuda.set_rng_state_all(self.outer_cuda)


def train(
    cfg: RunConfig, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, list[Sentence]], device: str | torch.device = "cpu", state: TrainState | None = None,
    select: Rule | None = None, rules: Sequence[Rule] = (), score_test: bool = True,
    on_step: Callable[[dict], None] | None = None,
) -> Iterator[dict[str, float]]:
    """Fine-tune ``model`` on splits["train"]; at every dev evaluation yield train loss, dev metrics, seconds.

    Evaluations come after every epoch, or with ``eval_steps`` = N every N optimizer steps and after the
    last one. ``step`` counts optimizer steps; ``epoch`` is the (fractional) number of epochs done.
    The model holds the evaluated weights while the caller handles the yielded dict (save it if best).
    ``select`` (the run's selection rule) and each of ``rules`` keep their pick so far in ``state.picks``;
    with ``early_stopping_patience`` N the run ends at the N-th evaluation after ``select``'s pick. With
    ``score_test`` and a labelled test split, an evaluation that some rule picks (so far), other than the
    last-evaluation rule, and the run's last evaluation are also scored on test (``test/*``, at dev's
    calibrated threshold): each rule's test numbers are then those of its pick, with no checkpoint kept.
    ``state``, when given, is kept up to date at every evaluation; one with step > 0 (and the model holding
    the weights of that evaluation) resumes the run there: on CPU the rest of the run is the same as an
    uninterrupted one's. Raises NonFiniteLoss as soon as a loss is NaN or infinite.
    ``on_step``, when given, is called after every optimizer step with ``{"phase": "train", "step", "steps" (the
    run's total), "epoch" (fractional), "epochs", "loss" (the mean since the last evaluation)}``, and with
    ``"phase": "dev"`` as a dev evaluation begins (a progress display; it should return at once).
    """
    tc = cfg.train
    rng = OwnRNG(tc.seed)  # dropout draws; with a fixed seed a CPU run repeats exactly
    targets = (beta_targets(cfg, splits["train"]) if cfg.model.is_seq_class
               else [list(map(float, s.gold)) for s in splits["train"]])  # the ceiling learns the gold labels
    train_items, truncated = encode(splits["train"], tokenizer, cfg.data.max_seq_length, targets, cfg.data.lowercase)
    items = {}
    rules = [*([select] if select else []), *(r for r in rules if select is None or r.name != select.name)]
    for name in ("dev", "test") if score_test and rules and labelled(splits.get("test") or []) else ("dev",):
        gold = None if cfg.model.is_seq_class else [list(map(float, s.gold)) for s in splits[name]]  # ceiling's loss
        items[name] = encode(splits[name], tokenizer, cfg.data.max_seq_length, gold, cfg.data.lowercase)
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
    if not cfg.model.is_seq_class and not state.step:
        model.head.pos_weight.fill_(_pos_weight(cfg, targets))
    if state.step and (state.step == total_steps or (select and tc.early_stopping_patience
                                                     and state.stale >= tc.early_stopping_patience)):
        return  # resumed from its last evaluation: the run had ended there
    if state.step:  # resume: the model holds this evaluation's weights already
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        rng.inner = state.rng["torch"]
        if rng.cuda and state.rng.get("cuda") is not None:
            rng.inner_cuda = state.rng["cuda"]
        mask_rng.set_state(state.rng["mask"])
    step, losses, sentences, start = state.step, [], 0, time.perf_counter()
    loss_sum = 0.0  # sum(losses), kept as it grows for on_step
    first_epoch, first_batch = state.epoch, state.batch
    for epoch in range(first_epoch, tc.num_train_epochs):
        skip = first_batch if epoch == first_epoch else 0
        stream = batches(train_items, tokenizer, tc.per_device_train_batch_size, shuffle=True,
                         group_by_length=tc.group_by_length, seed=tc.seed * 1000 + epoch, skip=skip)
        for i, (_, batch) in enumerate(stream, start=skip):
            with rng:
                loss = _forward_backward(model, batch, cfg, mask_rng, tokenizer, device)
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"loss is {loss} at epoch {epoch + 1}, step {step + 1}")
            losses.append(loss)
            loss_sum += loss
            sentences += len(batch["labels"])
            if (i + 1) % tc.gradient_accumulation_steps and i + 1 != n_batches:
                continue
            if tc.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            progress = {"phase": "train", "step": step, "steps": total_steps, "epoch": step / steps_per_epoch,
                        "epochs": tc.num_train_epochs, "loss": loss_sum / len(losses)} if on_step is not None else None
            if progress is not None:
                on_step(progress)
            if step % every and step != total_steps:
                continue
            if progress is not None:
                on_step({**progress, "phase": "dev"})
            train_seconds = time.perf_counter() - start
            done = i + 1 == n_batches  # the epoch's last batch: the next run starts the next epoch
            state.step, state.epoch, state.batch = step, epoch + done, 0 if done else i + 1
            state.optimizer, state.scheduler = optimizer.state_dict(), scheduler.state_dict()
            state.rng = {"torch": rng.inner, "mask": mask_rng.get_state(),
                         **({"cuda": rng.inner_cuda} if rng.cuda else {})}
            metrics = {
                EPOCH: step / steps_per_epoch,
                STEP: step,
                TRAIN_LOSS: sum(losses) / max(len(losses), 1),
                SENTENCES_PER_S: sentences / train_seconds,
                TRAIN + TRUNCATED: truncated,
                **{on_dev(k): v for k, v in
                   evaluate(model, items["dev"][0], splits["dev"], tokenizer, cfg, device).items()},
                on_dev(TRUNCATED): items["dev"][1],
            }
            picked = [r.name for r in rules if better(r, metrics, state.picks.get(r.name))]
            state.picks.update({name: _pick_record(metrics) for name in picked})
            if select is not None:
                state.stale = 0 if select.name in picked else state.stale + 1
            patience = tc.early_stopping_patience
            last = step == total_steps or bool(select and patience and state.stale >= patience)
            if "test" in items and (set(picked) - {"last"} or last):
                scored = evaluate(model, items["test"][0], splits["test"], tokenizer, cfg, device,
                                  metrics.get(on_dev(TOK_CAL_THRESHOLD)), calibrate=False)
                metrics.update({on_test(k): v for k, v in scored.items()}, **{on_test(TRUNCATED): items["test"][1]})
            metrics[SECONDS] = time.perf_counter() - start
            yield metrics
            if last:  # the last step, or dev has stopped improving
                return
            losses, loss_sum, sentences, start = [], 0.0, 0, time.perf_counter()


def _forward_backward(model, batch, cfg: RunConfig, mask_rng, tokenizer, device) -> float:
    """One training batch's forward and backward pass; returns its loss."""
    model.train()
    if cfg.data.do_mask_words and cfg.data.mask_prob > 0:
        batch = mask_words(batch, tokenizer.mask_token_id, cfg.data.mask_prob, mask_rng)
    batch = {k: v.to(device) for k, v in batch.items()}
    _, loss = model(batch, batch["labels"])
    if torch.isfinite(loss):
        (loss / cfg.train.gradient_accumulation_steps).backward()
    return loss.item()


def _pos_weight(cfg: RunConfig, targets: Sequence[Sequence[float]]) -> float:
    """The ceiling's weight on positive words: token_pos_weight, or (auto) negatives / positives in train."""
    if cfg.model.token_pos_weight != "auto":
        return float(cfg.model.token_pos_weight)
    positive = sum(1 for words in targets for t in words if t > 0)
    total = sum(len(words) for words in targets)
    return (total - positive) / positive if positive else 1.0


def _pick_record(metrics: dict) -> dict:
    """What a rule needs to compare a later evaluation with its pick: the numbers, nothing else."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def warmup_steps(tc, n_sentences: int, total_steps: int) -> int:
    """Warm-up length in optimizer steps: warmup_ratio of them, or the seed's arithmetic (``sentences``),
    warmup_ratio x (sentences // accumulation) x epochs, longer than the run when batches hold > 10 sentences."""
    if tc.warmup_unit == "sentences":
        return int(tc.warmup_ratio * (n_sentences // tc.gradient_accumulation_steps * tc.num_train_epochs))
    return int(tc.warmup_ratio * total_steps)


def make_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights without weight decay (as the seed's HF Trainer); the head (every
    parameter outside the encoder) at head_learning_rate when one is given."""
    tc = cfg.train
    # groups by role, never by value: (own head rate?, no decay?); without head_learning_rate they are the two
    # groups of earlier versions (decay, no decay) whatever the values, so saved optimizer states load on resume
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            own = tc.head_learning_rate is not None and not name.startswith("encoder.")
            groups.setdefault((own, param.ndim < 2), []).append(param)
    return torch.optim.AdamW([{"params": params, "lr": tc.head_learning_rate if own else tc.learning_rate,
                               "weight_decay": 0.0 if no_decay else tc.weight_decay}
                              for (own, no_decay), params in groups.items()], lr=tc.learning_rate, eps=tc.adam_epsilon)


def beta_targets(cfg: RunConfig, train: Sequence[Sentence]) -> list[list[float]] | None:
    """Word-score targets for the beta loss from ``token_input_dir/token_input_filename`` (or None); a
    ``{mode}`` in the file name is the split, ``train``, as in the seed."""
    tc = cfg.train
    if not (tc.token_input_dir and tc.token_input_filename and cfg.model.soft_attention_beta):
        return None
    path = Path(tc.token_input_dir) / tc.token_input_filename.replace("{mode}", "train")  # the seed's placeholder
    return token_targets(path, train, tc.normalise_preds)
