"""Progress while trials train: zs_core.train's on_step, a trial's posts to a real Ray actor (sweep.progress.Board)
and the driver's callback that turns them into lines (plain when redirected, a block redrawn on a terminal).
The callback gets Tune's events here as Tune calls them, with stand-ins for Tune's Trial objects."""
import os
import re
import time
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from sweep import progress
from sweep.progress import TrialProgress, TrialView, duration, poster
from zs_core.config import DataConfig, build_config
from zs_core.data import load_splits
from zs_core.encoders import load_tokenizer
from zs_core.model import build_model
from zs_core.train import train


def test_train_calls_on_step_after_every_optimizer_step_and_before_each_evaluation():
    cfg = build_config({"model_name": "tiny-random", "num_train_epochs": 2, "per_device_train_batch_size": 4,
                        "attention_evidence_size": 8, "final_hidden_layer_size": 8}, "test")
    splits = load_splits(DataConfig(limit={"train": 16, "dev": 8, "test": 8}), ("train", "dev"))
    seen = []
    reports = list(train(cfg, build_model(cfg.model, 1), load_tokenizer("tiny-random"), splits, on_step=seen.append))
    train_steps = [s for s in seen if s["phase"] == "train"]
    assert [s["step"] for s in train_steps] == list(range(1, 9)) and {s["steps"] for s in seen} == {8}
    assert [s["epoch"] for s in train_steps] == [k / 4 for k in range(1, 9)]
    assert [(s["step"], s["epoch"]) for s in seen if s["phase"] == "dev"] == [(4, 1.0), (8, 2.0)]
    assert {s["epochs"] for s in seen} == {2}
    assert seen.index({**train_steps[3], "phase": "dev"}) == 4  # right after step 4, before the evaluation
    # the loss shown at an evaluation is the train loss that evaluation reports
    assert [s["loss"] for s in seen if s["phase"] == "dev"] == pytest.approx([r["train/loss"] for r in reports])


def test_duration_and_time_left():
    assert [duration(s) for s in (0, 59.9, 61, 3599, 3725)] == ["0s", "59s", "1m01s", "59m59s", "1h02m"]
    view = TrialView("t")
    view.take({"phase": "train", "step": 10, "steps": 110, "epoch": 0.1, "loss": 0.5, "elapsed": 20.0})
    assert view.left() == ""  # one post: no rate yet
    view.take({"phase": "train", "step": 30, "steps": 110, "epoch": 0.3, "loss": 0.5, "elapsed": 60.0})
    assert view.left() == ", ~2m40s left"  # 20 steps in 40 s; 80 to go


@pytest.fixture(scope="module")
def board():
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield progress.start_board()
    ray.shutdown()
    progress._RUNTIME["board"] = None


def trial(trial_id: str, **config) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config=config, status="RUNNING", last_result={})


@pytest.mark.slow
def test_a_trial_posts_to_the_board_and_the_driver_prints_its_lines(board, capsys, monkeypatch):
    import ray

    post = poster(board, "abc_00000")
    state = {"phase": "train", "steps": 40, "epoch": 0.025, "epochs": 1, "loss": 0.7}
    post({**state, "step": 1})
    post({**state, "step": 2})  # within POST_SECONDS of the first: not posted
    post({**state, "step": 3, "phase": "dev"})  # a dev evaluation begins: posted at once
    assert ray.get(board.snapshot.remote())["abc_00000"]["step"] == 3

    monkeypatch.setattr(progress, "PLAIN_SECONDS", 0.0)  # a line whenever the trial moved on
    callback = TrialProgress("dev/sent_f1", "max")
    running = trial("abc_00000", learning_rate=3e-5, __trial_index__=1)
    callback.on_trial_start(0, [running], running)
    callback._runtime()[1]["live"] = False  # pytest's capture is no terminal either
    callback.on_step_end(1, [running])
    board.post.remote("abc_00000", {**state, "step": 20, "epoch": 0.5, "elapsed": 30.0})
    callback._runtime()[1]["polled"] = 0.0
    callback.on_step_end(2, [running])
    callback.on_trial_result(3, [running], running, {"epoch": 1.0, "step": 40, "train/loss": 0.61,
                                                     "dev/sent_f1": 0.8, "best_epoch": 1.0, "best_value": 0.8})
    running.status = "TERMINATED"
    callback.on_trial_complete(4, [running], running)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "abc_00000 started: learning_rate 3.00e-05"  # no __trial_index__
    assert re.fullmatch(r"abc_00000 step 3/40 \(epoch 0\.03/1\): evaluating on dev, \ds", lines[1])
    assert re.fullmatch(r"abc_00000 step 20/40 \(epoch 0\.5/1\): loss 0\.7000, \ds, ~\d+s left", lines[2])
    assert re.fullmatch(r"abc_00000 epoch 1 \(step 40/40\): loss 0\.6100, dev/sent_f1 0\.8000 \(best 0\.8000\), \ds",
                        lines[3])
    assert re.fullmatch(r"abc_00000 done after 1 evaluations, \ds: best dev/sent_f1 0\.8000 at epoch 1", lines[4])
    assert len(lines) == 5 and "\x1b" not in "".join(lines)


def test_a_resumed_trial_shows_the_best_it_picked_before_the_resume(capsys):
    """Bug: a trial whose pick came before a --resume printed "(best None)" (this driver never saw that
    evaluation); the trial reports its pick's value with every evaluation."""
    callback = TrialProgress("dev/loss", "min")
    resumed = trial("abc_00000")
    callback._runtime()[1]["live"] = False
    callback.on_trial_result(0, [resumed], resumed, {"epoch": 3.0, "step": 120, "train/loss": 0.5, "dev/loss": 0.4,
                                                     "best_epoch": 2.0, "best_value": 0.25})
    resumed.status = "TERMINATED"
    callback.on_trial_complete(1, [resumed], resumed)
    lines = capsys.readouterr().out.splitlines()
    assert "dev/loss 0.4000 (best 0.2500)" in lines[0], lines
    assert lines[1].endswith(": best dev/loss 0.2500 at epoch 2"), lines


@pytest.mark.slow
def test_on_a_terminal_the_running_trials_are_one_block_redrawn_in_place(board, capsys):
    callback = TrialProgress("dev/sent_f1", "max")
    a, b = trial("aaa_00000"), trial("aaa_00001")
    screen = callback._runtime()[1]
    screen["live"] = True
    for t in (a, b):
        board.post.remote(t.trial_id, {"phase": "train", "step": 5, "steps": 10, "epoch": 0.5, "loss": 0.4,
                                       "elapsed": 1.0})
    time.sleep(0.2)
    callback.on_step_end(0, [a, b])
    first = capsys.readouterr().out
    assert first.count("\n") == 2 and "\x1b" not in first  # the block, drawn the first time
    callback.on_trial_start(1, [a, b], a)  # an event line goes above the block, which is drawn again
    again = capsys.readouterr().out
    assert again.startswith("\x1b[2F\x1b[J" + "aaa_00000 started\n") and again.count("step 5/10") == 2
    callback.on_experiment_end([a, b])
    assert capsys.readouterr().out == "\x1b[2F\x1b[J"  # cleared at the end
