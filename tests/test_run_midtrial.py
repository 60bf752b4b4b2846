"""A long trial killed mid-way (kill -9, Ctrl-C or SIGTERM) goes on from its latest state: sweep.run --resume
(and a retry) restore it through tune.get_checkpoint(), every evaluation is run once, and the leaderboard
equals an uninterrupted run's; afterwards only the best checkpoint is left, without its resume file."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

NAME = "midtrial"
ROOT = Path(__file__).resolve().parents[1]



def checkpoints(tune_dir: Path) -> list[str]:
    return sorted(glob.glob(str(tune_dir / "train_trial_*" / "checkpoint_*")))


def reported_steps(tune_dir: Path) -> list[int]:
    """Every evaluation the trial reported, in order, from its result.json (all runs of it)."""
    found = glob.glob(str(tune_dir / "train_trial_*" / "result.json"))  # the trial persists a checkpoint before
    lines = Path(found[0]).read_text().splitlines() if found else []  # the driver logs its result
    return [json.loads(line)["step"] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def space(tmp_path_factory, write_space) -> Path:
    """One trial, 3 epochs of 8 steps, dev after every step: 24 evaluations, each a checkpoint."""
    return write_space(tmp_path_factory.mktemp("midtrial"), NAME,
                       fixed={"model_name": "tiny-random", "num_train_epochs": 3, "eval_steps": 1,
                              "per_device_train_batch_size": 4, "do_mask_words": True, "mask_prob": 0.2},
                       tune={"searcher": "grid", "scheduler": "fifo", "seeds": [1], "resources_per_trial": {"cpu": 1},
                             "keep_top_k": 1})


@pytest.fixture(scope="module")
def whole(space, run_sweep) -> Path:
    """The uninterrupted run's sweep folder."""
    run_sweep(space, "--output", space.parent / "whole")
    return space.parent / "whole" / NAME


def interrupt(space: Path, out: Path, until, signum, *args: str) -> tuple[int, str]:
    """Run the sweep, send ``signum`` to its whole process group (as a terminal's Ctrl-C does) once ``until()``
    holds, and return its exit code and standard error."""
    driver = subprocess.Popen([sys.executable, "-m", "sweep.run", str(space), "--output", str(out), *args], cwd=ROOT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not until():
            assert driver.poll() is None and time.time() < deadline, "the sweep ended before the signal"
            time.sleep(0.05)
        os.killpg(driver.pid, signum)
        _, err = driver.communicate(timeout=120)
        return driver.returncode, err
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


@pytest.mark.slow
def test_a_trial_stopped_mid_way_three_ways_resumes_from_its_latest_state(space, whole, run_sweep, board, trials,
                                                                         comparable):
    """kill -9, then Ctrl-C, then SIGTERM, each mid-trial and each followed by --resume, and the sweep ends as the
    uninterrupted one did. Issue 20: Ctrl-C used to finalise the interrupted trial as STOPPED_EARLY and delete the
    state --resume needed."""
    out = space.parent / "resumed"
    tune_dir = out / NAME / "tune"

    def moved_on(steps: int):
        return lambda: len(checkpoints(tune_dir)) >= 2 and len(reported_steps(tune_dir)) >= steps

    def went_on(before: list[int]) -> list[int]:
        """The steps reported so far, after asserting that the last run went on from the last checkpointed
        evaluation: none missing, and none twice except the last one before the stop. (Tune logs a report
        before it registers the report's checkpoint; a stop between the two makes the resumed run go on from
        the evaluation before and report the last one again, with the same numbers.)"""
        steps = reported_steps(tune_dir)
        new = steps[len(before):]
        assert new and new[0] in (before[-1], before[-1] + 1) and new == list(range(new[0], new[-1] + 1)), steps
        return steps

    code, _ = interrupt(space, out, moved_on(5), signal.SIGKILL)
    before = reported_steps(tune_dir)
    assert code == -signal.SIGKILL and 5 <= len(before) < 12 and before == list(range(1, len(before) + 1))
    assert not (out / NAME / "leaderboard.parquet").exists()

    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        got, err = interrupt(space, out, moved_on(len(before) + 4), signum, "--resume")
        last = err.strip().splitlines()[-1]
        assert got == code, err[-3000:]
        assert last.startswith(f"interrupted: interrupted ({signum.name})") and "nothing was finalised" in last
        assert signum == signal.SIGTERM or "with 1 trial unfinished" in last  # Ctrl-C waits for Tune to stop
        assert last.endswith(f"go on with: python -m sweep.run {space} --output {out} --resume")
        assert "Tuner.restore" not in err and not (out / NAME / "leaderboard.parquet").exists()
        before = went_on(before)
        assert before[-1] < 24

    log = run_sweep(space, "--output", out, "--resume").stdout
    assert "best None" not in log and re.search(r" done after \d+ evaluations, .*: best \S+ \d", log), log[-3000:]
    steps = went_on(before)
    assert steps[-1] == 24 and len(steps) <= 24 + 3
    mine, theirs = board(out / NAME), board(whole)
    assert trials(mine)["status"].tolist() == ["TERMINATED"] and trials(mine)["test/tok_map"].notna().all()
    pd.testing.assert_frame_equal(comparable(mine, ["method"]), comparable(theirs, ["method"]), check_exact=True)
    curve = pd.read_parquet(out / NAME / "curves.parquet")
    assert curve["step"].tolist() == list(range(1, 25))  # each once
    # disk stays bounded: the best checkpoint only, and no resume state in it
    left = checkpoints(tune_dir)
    assert len(left) == 1 and Path(left[0]) == Path(trials(mine)["checkpoint"].iloc[0])
    assert not (Path(left[0]) / "train_state.pt").exists()


@pytest.mark.slow
def test_a_resume_whose_latest_checkpoint_is_gone_goes_on_from_what_is_left(space, whole, run_sweep, board, trials,
                                                                           comparable):
    """Tune's saved state names a latest checkpoint whose folder is gone (Tune deleted it for a newer one and the
    driver was killed before its state was saved again): Tune used to fail the trial and its retry. Here every
    checkpoint folder is gone, so the trial starts again from its first step and ends as the uninterrupted run."""
    out = space.parent / "gone"
    tune_dir = out / NAME / "tune"
    code, _ = interrupt(space, out, lambda: len(checkpoints(tune_dir)) >= 2, signal.SIGKILL)
    assert code == -signal.SIGKILL and checkpoints(tune_dir)
    for folder in checkpoints(tune_dir):
        shutil.rmtree(folder)
    log = run_sweep(space, "--output", out, "--resume").stdout
    assert re.search(r"_00000: its latest checkpoint \S+checkpoint_\d+ is gone; it goes on from", log), log[-3000:]
    mine = board(out / NAME)
    assert trials(mine)["status"].tolist() == ["TERMINATED"]
    pd.testing.assert_frame_equal(comparable(mine, ["method"]), comparable(board(whole), ["method"]), check_exact=True)
