"""zs_core.train resumed from a TrainState at an evaluation: the rest of the run equals an uninterrupted one
(on CPU, bit for bit), through a checkpoint on disk and torch.load(weights_only=True)."""
from __future__ import annotations

import io

import pytest
import torch

from zs_core.checkpoint import load_checkpoint, load_train_state, save_checkpoint
from zs_core.config import DataConfig, build_config
from zs_core.data import load_splits
from zs_core.encoders import load_tokenizer
from zs_core.model import build_model
from zs_core.state import TrainState
from zs_core.train import train

BASE = {"model_name": "tiny-random", "num_train_epochs": 3, "learning_rate": 1e-3, "eval_steps": 3,
        "per_device_train_batch_size": 16, "do_mask_words": True, "mask_prob": 0.2}  # dropout + masking draws


def dev_metrics(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith("dev/") or k in ("epoch", "step", "train/loss")}


@pytest.mark.parametrize("stop_after, accumulation", [(1, 1), (2, 1), (4, 1), (1, 2)])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, stop_after, accumulation):
    cfg = build_config({**BASE, "gradient_accumulation_steps": accumulation}, "resume")
    splits = load_splits(DataConfig(limit={"train": 70, "dev": 24, "test": 8}))  # 5 batches, the last short
    tokenizer = load_tokenizer("tiny-random")
    model = build_model(cfg.model, 1)
    whole = [dev_metrics(m) for m in train(cfg, model, tokenizer, splits)]
    final = {k: v.clone() for k, v in model.state_dict().items()}

    state, first = TrainState(), build_model(cfg.model, 1)
    run = train(cfg, first, tokenizer, splits, state=state)
    before = [dev_metrics(next(run)) for _ in range(stop_after)]
    state.picks["note"] = {"step": 0.5}  # rides along with the state
    save_checkpoint(tmp_path / "ckpt", first, tokenizer, cfg, state=state)
    run.close()  # the process dies here; nothing of it is used below but the checkpoint
    del first, run

    resumed, _, _ = load_checkpoint(tmp_path / "ckpt")
    saved = load_train_state(tmp_path / "ckpt")
    assert saved.picks == {"note": {"step": 0.5}} and saved.step == before[-1]["step"]
    after = [dev_metrics(m) for m in train(cfg, resumed, tokenizer, splits, state=saved)]
    assert before + after == whole
    assert len(whole) == {1: 5, 2: 3}[accumulation] and whole[-1]["epoch"] == 3.0
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, final[key]), key


def test_a_state_round_trips_through_weights_only_load():
    cfg = build_config(BASE, "resume")
    splits = load_splits(DataConfig(limit={"train": 40, "dev": 8, "test": 8}))
    state = TrainState()
    next(train(cfg, build_model(cfg.model, 1), load_tokenizer("tiny-random"), splits, state=state))
    buffer = io.BytesIO()
    torch.save({"state": state.__dict__}, buffer)
    buffer.seek(0)
    loaded = TrainState(**torch.load(buffer, weights_only=True)["state"])
    assert (loaded.step, loaded.epoch, loaded.batch) == (3, 1, 0)  # 3 batches an epoch: epoch 1 starts next
    assert torch.equal(loaded.rng["torch"], state.rng["torch"]) and loaded.scheduler == state.scheduler


def test_a_run_resumed_at_its_last_evaluation_ends_there(tmp_path):
    cfg = build_config({**BASE, "num_train_epochs": 1}, "resume")
    splits = load_splits(DataConfig(limit={"train": 16, "dev": 8, "test": 8}))
    tokenizer, model, state = load_tokenizer("tiny-random"), build_model(cfg.model, 1), TrainState()
    assert len(list(train(cfg, model, tokenizer, splits, state=state))) == 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert list(train(cfg, model, tokenizer, splits, state=state)) == []  # nothing trained past the end
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
