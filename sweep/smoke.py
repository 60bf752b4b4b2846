"""What --smoke-test runs on, for the commands that need a model or an output first (sweep.predict,
sweep.evaluate, sweep.report): a tiny-random soft-attention model trained for 1 epoch on the first 32 wnut16
train sentences, made here in seconds without Ray; sweep.run and sweep.heads have their own smoke runs."""
from __future__ import annotations

from pathlib import Path

import yaml

from zs_core.config import DataConfig
from zs_core.protocol import DEFAULT_METRIC, DEV, RANDOM, TRUNCATED, model_method, on_test

SMOKE = {"train": 32, "dev": 8, "test": 8}  # sentences per split
SWEEP_SMOKE = {"train": 32, "dev": 32, "test": 32}  # the report's (as sweep.run --smoke-test; test's first 8 hold
# no entity, so no example sentence to show)
SMOKE_CONFIG = {"model_name": "tiny-random", "num_train_epochs": 1, "per_device_train_batch_size": 8,
                "learning_rate": 1e-3, "attention_evidence_size": 16, "final_hidden_layer_size": 16}
SMOKE_TRIAL = "00000_00000"  # the smoke sweep's one trial, named as Tune names trials


def smoke_data(limit: dict = SMOKE) -> DataConfig:
    return DataConfig(limit=limit)


def smoke_train(eval_steps: int = 0, limit: dict = SMOKE):
    """-> (model, tokenizer, cfg, splits, the yielded evaluations) of the smoke model."""
    from zs_core.config import build_config
    from zs_core.data import load_splits
    from zs_core.encoders import load_tokenizer
    from zs_core.model import build_model
    from zs_core.train import train

    cfg = build_config({**SMOKE_CONFIG, "eval_steps": eval_steps}, "--smoke-test")
    model, tokenizer = build_model(cfg.model, cfg.train.seed), load_tokenizer("tiny-random")
    splits = load_splits(smoke_data(limit))
    curve = list(train(cfg, model, tokenizer, splits, score_test=False))
    return model, tokenizer, cfg, splits, curve


def smoke_checkpoint(folder: Path) -> Path:
    """The smoke model's checkpoint, FOLDER/smoke-checkpoint."""
    from zs_core.checkpoint import save_checkpoint

    model, tokenizer, cfg, _, _ = smoke_train()
    return save_checkpoint(folder / "smoke-checkpoint", model, tokenizer, cfg)


def smoke_predictions(folder: Path, n: int) -> tuple[str, str]:
    """(test, dev) word-score files of the random floor on the first ``n`` wnut16 sentences, for sweep.evaluate."""
    from zs_core.data import load_splits
    from zs_core.evaluation import random_scores
    from zs_core.predictions import write_predictions

    splits = load_splits(DataConfig(limit={"dev": n, "test": n}), ("dev", "test"))
    paths = {}
    for name in ("test", "dev"):
        paths[name] = write_predictions(folder / f"{name}.tsv", splits[name], random_scores(splits[name])[1],
                                        {"method": RANDOM, "split": name})[0]
    return str(paths["test"]), str(paths["dev"])


def smoke_sweep(folder: Path) -> Path:
    """A sweep.run output folder, FOLDER/smoke, for sweep.report: the smoke model as its one trial (dev checked
    every 2 steps: 2 evaluations), its kept checkpoint scored on test, and the random baseline row."""
    import pandas as pd

    from sweep.leaderboard import typed, write_parquet
    from zs_core.batching import encode
    from zs_core.checkpoint import save_checkpoint
    from zs_core.evaluation import random_baseline
    from zs_core.train import evaluate

    out = folder / "smoke"
    model, tokenizer, cfg, splits, curve = smoke_train(eval_steps=2, limit=SWEEP_SMOKE)
    trial_dir = out / "tune" / f"train_trial_{SMOKE_TRIAL}_0_seed-{cfg.train.seed}"
    checkpoint = save_checkpoint(trial_dir / "checkpoint_000000", model, tokenizer, cfg)
    items, truncated = encode(splits["test"], tokenizer, cfg.data.max_seq_length, lowercase=cfg.data.lowercase)
    test = evaluate(model, items, splits["test"], tokenizer, cfg, threshold=None, calibrate=False)
    last = curve[-1]
    trial = {"trial_id": SMOKE_TRIAL, "method": model_method(cfg.model), "status": "TERMINATED", **cfg.flat(),
             "best_epoch": last["epoch"], "best_step": last["step"], "checkpoint": str(checkpoint),
             **{k: v for k, v in last.items() if k.startswith(DEV)},
             **{on_test(k): v for k, v in test.items()}, on_test(TRUNCATED): truncated}
    baseline = {"trial_id": "random", "method": RANDOM, "status": "TERMINATED", **random_baseline(splits)}
    write_parquet(typed(pd.DataFrame([trial, baseline])), out / "leaderboard.parquet")
    write_parquet(pd.DataFrame(curve).assign(trial_id=SMOKE_TRIAL, seed=cfg.train.seed), out / "curves.parquet")
    doc = {"name": "smoke", "data": {"dataset": "wnut16", "limit": SWEEP_SMOKE}, "fixed": SMOKE_CONFIG, "search": {},
           "tune": {"metric": DEFAULT_METRIC, "mode": "max"}}
    (out / "sweep.yaml").write_text("# sweep.report --smoke-test\n" + yaml.safe_dump(doc, sort_keys=False))
    return out
