"""A trial resumed from the checkpoint Tune's saved state names goes on from the next whole one in its folder when
that one was part-deleted (a driver killed while Tune deleted it), else an earlier whole one, else the start."""
from __future__ import annotations

import shutil

import pytest
from ray import tune

from sweep.trial import checkpoint_index, resume_point
from zs_core.checkpoint import save_checkpoint
from zs_core.config import build_config
from zs_core.encoders import load_tokenizer
from zs_core.model import build_model
from zs_core.state import TrainState
from zs_core.train import make_optimizer


@pytest.fixture
def trial_dir(tmp_path):
    """checkpoint_000004..7 of one trial, each holding a TrainState at step 4..7."""
    cfg = build_config({"model_name": "tiny-random"}, "resume")
    model, tokenizer = build_model(cfg.model, 1), load_tokenizer("tiny-random")
    for step in (4, 5, 6, 7):
        state = TrainState()
        state.step = step
        save_checkpoint(tmp_path / f"checkpoint_{step:06d}", model, tokenizer, cfg, state=state)
    (tmp_path / "result.json").write_text("")
    return tmp_path


def resumed_step(folder, name) -> int:
    model, state = resume_point(tune.Checkpoint(str(folder / name)))
    assert (model is None) == (state.step == 0)
    return state.step


def part_delete(folder):
    for path in sorted(folder.rglob("*"), reverse=True)[:3]:  # the weights go first, the folder stays
        path.unlink() if path.is_file() else shutil.rmtree(path)


def test_the_named_checkpoint_when_whole(trial_dir):
    assert resumed_step(trial_dir, "checkpoint_000005") == 5


def test_a_part_deleted_named_checkpoint_gives_way_to_the_next_whole_one(trial_dir, capsys):
    part_delete(trial_dir / "checkpoint_000005")
    assert resumed_step(trial_dir, "checkpoint_000005") == 6
    assert "checkpoint_000005: not a whole checkpoint to go on from" in capsys.readouterr().err
    shutil.rmtree(trial_dir / "checkpoint_000005")  # deleted whole: the same
    assert resumed_step(trial_dir, "checkpoint_000005") == 6


def test_else_an_earlier_whole_one_else_the_start(trial_dir):
    for name in ("checkpoint_000006", "checkpoint_000007"):
        part_delete(trial_dir / name)
    assert resumed_step(trial_dir, "checkpoint_000006") == 5
    for name in ("checkpoint_000004", "checkpoint_000005"):
        shutil.rmtree(trial_dir / name)
    assert resumed_step(trial_dir, "checkpoint_000006") == 0


def test_checkpoint_index():
    assert [checkpoint_index(n) for n in ("checkpoint_000006", "checkpoint_12", "checkpoint_", "result.json",
                                          "checkpoint_tmp1")] == [6, 12, -1, -1, -1]


def test_a_model_with_frozen_layers_resumes_frozen_and_takes_its_optimizer_state(tmp_path):
    """freeze_bert_layers_up_to: the optimizer's state covers the trainable parameters only; a resumed model with
    every layer trainable could not load it (seen: "loaded state dict contains a parameter group that doesn't
    match the size of optimizer's group") and would have trained the frozen layers."""
    cfg = build_config({"model_name": "tiny-random", "freeze_bert_layers_up_to": 1}, "resume")
    model, tokenizer = build_model(cfg.model, 1), load_tokenizer("tiny-random")
    state = TrainState()
    state.step, state.optimizer = 3, make_optimizer(model, cfg).state_dict()
    save_checkpoint(tmp_path / "checkpoint_000003", model, tokenizer, cfg, state=state)
    resumed, got = resume_point(tune.Checkpoint(str(tmp_path / "checkpoint_000003")))
    trainable = [name for name, p in resumed.named_parameters() if p.requires_grad]
    assert trainable == [name for name, p in model.named_parameters() if p.requires_grad]
    assert not any(name.startswith(("encoder.embeddings", "encoder.encoder.layer.0.")) for name in trainable)
    make_optimizer(resumed, cfg).load_state_dict(got.optimizer)  # raised ValueError before
