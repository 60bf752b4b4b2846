"""A long trial killed mid-way goes on from its latest state: sweep.run --resume (and a retry) restore it
through tune.get_checkpoint(), every evaluation is run once, and the leaderboard equals an uninterrupted
run's; afterwards only the best checkpoint is left, without its resume file."""
from __future__ import annotations

import glob
import json
from pathlib import Path

import pandas as pd
import pytest

NAME = "midtrial"



def checkpoints(tune_dir: Path) -> list[str]:
    return sorted(glob.glob(str(tune_dir / "train_trial_*" / "checkpoint_*")))


def reported_steps(tune_dir: Path) -> list[int]:
    """Every evaluation the trial reported, in order, from its result.json (all runs of it)."""
    lines = Path(glob.glob(str(tune_dir / "train_trial_*" / "result.json"))[0]).read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def space(tmp_path_factory, write_space) -> Path:
    """One trial, 3 epochs of 8 steps, dev after every step: 24 evaluations, each a checkpoint."""
    return write_space(tmp_path_factory.mktemp("midtrial"), NAME,
                       fixed={"model_name": "tiny-random", "num_train_epochs": 3, "eval_steps": 1,
                              "per_device_train_batch_size": 4, "do_mask_words": True, "mask_prob": 0.2},
                       tune={"searcher": "grid", "scheduler": "fifo", "seeds": [1], "resources_per_trial": {"cpu": 1},
                             "keep_top_k": 1})


@pytest.mark.slow
def test_a_trial_killed_mid_way_resumes_from_its_latest_state(space, run_sweep, board, trials, kill_when, comparable):
    run_sweep(space, "--output", space.parent / "whole")
    out = space.parent / "resumed"
    tune_dir = out / NAME / "tune"
    kill_when(space, out, lambda: len(checkpoints(tune_dir)) >= 2 and len(reported_steps(tune_dir)) >= 5)
    before = reported_steps(tune_dir)
    assert 5 <= len(before) < 24 and not (out / NAME / "leaderboard.parquet").exists()

    run_sweep(space, "--output", out, "--resume")
    steps = reported_steps(tune_dir)
    # went on from the last checkpointed evaluation: no step reported twice, none missing
    assert steps == list(range(1, 25)), steps
    mine, theirs = board(out / NAME), board(space.parent / "whole" / NAME)
    assert trials(mine)["status"].tolist() == ["TERMINATED"] and trials(mine)["test/tok_map"].notna().all()
    pd.testing.assert_frame_equal(comparable(mine, ["method"]), comparable(theirs, ["method"]), check_exact=True)
    curve = pd.read_parquet(out / NAME / "curves.parquet")
    assert curve["step"].tolist() == list(range(1, 25))
    # disk stays bounded: the best checkpoint only, and no resume state in it
    left = checkpoints(tune_dir)
    assert len(left) == 1 and Path(left[0]) == Path(trials(mine)["checkpoint"].iloc[0])
    assert not (Path(left[0]) / "train_state.pt").exists()
