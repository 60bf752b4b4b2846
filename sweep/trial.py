"""The Tune trainable (a thin loop around zs_core.train) and the test evaluation of kept checkpoints."""
from __future__ import annotations

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


def train_trial(config: dict[str, Any], splits: dict[str, list[Sentence]], fixed: dict[str, Any],
                seeds: tuple[int, ...], metric: str, mode: str) -> None:
    """One configuration and seed: train, report each epoch, checkpoint the best epoch only."""
    from ray import tune

    use_trial_threads()
    quiet_libraries()
    cfg = build_config(trial_config(config, fixed, seeds), "trial config")
    tokenizer = load_tokenizer(cfg.model.model_name)
    model = build_model(cfg.model, cfg.train.seed)
    best = None
    try:
        for metrics in train(cfg, model, tokenizer, splits, device()):
            value = metrics.get(metric, float("nan"))
            metrics = {**metrics, "nan_loss": 0}
            if best is None or (value > best if mode == "max" else value < best):
                best = value
                with tempfile.TemporaryDirectory() as tmp:
                    save_checkpoint(os.path.join(tmp, "model"), model, tokenizer, cfg)
                    tune.report({**metrics, "best_epoch": metrics["epoch"]},
                                checkpoint=tune.Checkpoint.from_directory(os.path.join(tmp, "model")))
            else:
                tune.report(metrics)
    except NonFiniteLoss as err:
        tune.report({metric: float("nan"), "nan_loss": 1, "nan_error": str(err)})


def test_metrics(checkpoint: str, splits: dict[str, list[Sentence]], threshold: float | None) -> dict[str, float]:
    """A kept checkpoint on test: token metrics at importance_threshold and at dev's calibrated threshold."""
    use_trial_threads()
    quiet_libraries()
    model, tokenizer, cfg = load_checkpoint(checkpoint)
    model.to(device())
    items, truncated = encode(splits["test"], tokenizer, cfg.data.max_seq_length)
    metrics = evaluate(model, items, splits["test"], tokenizer, cfg, device(), threshold, calibrate=False)
    metrics["truncated_words"] = truncated
    return {f"test/{k}": v for k, v in metrics.items() if k != "threshold"}
