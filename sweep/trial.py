"""The Tune trainable (a thin loop around zs_core.train) and the test evaluation of kept checkpoints."""
from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import torch

from sweep.common import quiet_libraries

from zs_core.batching import encode
from zs_core.checkpoint import load_checkpoint, save_checkpoint
from zs_core.config import build_config
from zs_core.data import Sentence
from zs_core.encoders import load_tokenizer
from zs_core.model import build_model
from zs_core.train import NonFiniteLoss, evaluate, train

SEED_INDEX = "__trial_index__"  # set by Tune's Repeater: which of the sweep's seeds this trial runs


def trial_config(config: dict[str, Any], fixed: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Any]:
    """Fixed settings + this trial's sampled values + its seed, as one flat config."""
    flat = {**fixed, **{k: v for k, v in config.items() if not k.startswith("__")}}
    if "seed" not in config:
        flat["seed"] = seeds[int(config.get(SEED_INDEX, 0)) % len(seeds)]
    return flat


def use_trial_threads() -> None:
    """Torch threads = the CPUs Ray gave this trial (Ray also sets OMP_NUM_THREADS to that number)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def improved(value: float, best: float | None, mode: str) -> bool:
    """Is ``value`` better than ``best``? A NaN is never better; anything beats no value yet."""
    if value is None or not math.isfinite(value):
        return best is None
    if best is None or not math.isfinite(best):
        return True
    return value > best if mode == "max" else value < best


def train_trial(config: dict[str, Any], splits: dict[str, list[Sentence]], fixed: dict[str, Any],
                seeds: tuple[int, ...], metric: str, mode: str) -> None:
    """One configuration and seed: train, report each dev evaluation, checkpoint the best one only.

    A retried or resumed trial starts again from epoch 1 (same seed, so on CPU the same numbers).
    A NaN or infinite loss ends the trial with one report carrying ``nan_loss: 1``.
    """
    import ray
    from ray import tune

    use_trial_threads()
    quiet_libraries()
    # where it ran: torch's device comes from torch (device()), not from the GPUs Ray granted (gpu_ids)
    node = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "device": device(),
            "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids())}
    cfg = build_config(trial_config(config, fixed, seeds), "trial config")
    tokenizer = load_tokenizer(cfg.model.model_name)
    model = build_model(cfg.model, cfg.train.seed)
    best = None
    try:
        for metrics in train(cfg, model, tokenizer, splits, device()):
            metrics = {**metrics, **node, "nan_loss": 0}
            value = metrics.get(metric, float("nan"))
            if not improved(value, best, mode):
                tune.report(metrics)
                continue
            best = value
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(os.path.join(tmp, "model"), model, tokenizer, cfg)
                tune.report({**metrics, "best_epoch": metrics["epoch"], "best_step": metrics["step"]},
                            checkpoint=tune.Checkpoint.from_directory(os.path.join(tmp, "model")))
    except NonFiniteLoss as err:
        tune.report({metric: float("nan"), **node, "nan_loss": 1, "nan_error": str(err)})


def evaluate_on_test(checkpoint, splits: dict[str, list[Sentence]], threshold: float | None) -> dict[str, float]:
    """A kept checkpoint (a tune.Checkpoint, local or in remote storage) on test.

    Token metrics at importance_threshold (0.5 unless configured) and tok_cal_* at dev's calibrated
    ``threshold``; sentence metrics at 0.5.
    """
    use_trial_threads()
    quiet_libraries()
    with checkpoint.as_directory() as folder:
        model, tokenizer, cfg = load_checkpoint(folder)
    model.to(device())
    items, truncated = encode(splits["test"], tokenizer, cfg.data.max_seq_length, lowercase=cfg.data.lowercase)
    if threshold is not None and not math.isfinite(threshold):
        threshold = None
    metrics = evaluate(model, items, splits["test"], tokenizer, cfg, device(), threshold, calibrate=False)
    metrics["truncated_words"] = truncated
    return {f"test/{k}": v for k, v in metrics.items()}
