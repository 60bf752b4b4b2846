"""Repeatability of sweep.run with real Ray Tune: a sweep stopped part-way (Ctrl-C, or kill -9 of its driver on
another machine) and resumed gives the same leaderboards, by-config tables and curves as one that ran through; its
unfinished trials run again in new processes, so this is also "the same sweep run twice gives the same numbers".

One sweep for both: a grid over two learning rates x seeds 1 and 2, 2 epochs, FIFO (no early stopping), every
trial kept and scored on test. The run_sweep, write_space, board, trials, trial_states and repo_root fixtures
are in conftest.py.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

NAME = "repeat"
def assert_same_results(got: Path, expected: Path, board, trials, comparable) -> None:
    """Two sweep folders hold equal leaderboards (every config, dev/* and test/* column), by-config tables and
    learning curves, up to the columns in VARYING."""
    mine, theirs = board(got), board(expected)
    for frame in (mine, theirs):  # the full grid, every trial scored on dev and test: nothing compared is empty
        runs = trials(frame)
        assert sorted(zip(runs["learning_rate"], runs["seed"])) == [(1e-3, 1), (1e-3, 2), (3e-3, 1), (3e-3, 2)]
        assert (runs["status"] == "TERMINATED").all() and (runs["epochs_run"] == 2).all()
        metrics = [c for c in frame.columns if c.startswith(("dev/", "test/"))]
        assert len(metrics) > 20 and runs[metrics].notna().all(axis=None)
    order = ["method", "learning_rate", "seed"]
    pd.testing.assert_frame_equal(comparable(mine, order), comparable(theirs, order), check_exact=True)
    pd.testing.assert_frame_equal(comparable(board(got, by_config=True), ["learning_rate"]),
                                  comparable(board(expected, by_config=True), ["learning_rate"]), check_exact=True)

    def curves(folder: Path, frame: pd.DataFrame) -> pd.DataFrame:  # trial_id -> its learning rate
        curve = pd.read_parquet(folder / "curves.parquet")
        curve = curve.merge(frame[["trial_id", "learning_rate"]], on="trial_id", validate="many_to_one")
        return comparable(curve, ["learning_rate", "seed", "step"])

    assert len(curves(got, mine)) == 4 * 2  # an evaluation after each epoch of each trial
    pd.testing.assert_frame_equal(curves(got, mine), curves(expected, theirs), check_exact=True)


@pytest.fixture(scope="module")
def space(tmp_path_factory, write_space) -> Path:
    """4 trials, 2 at a time. A fresh process per trial (reuse_actors false) makes a trial take seconds, not a
    fraction of one, so the resume test has time to stop the sweep between its first and its last trial."""
    return write_space(tmp_path_factory.mktemp("repeat"), NAME,
                       fixed={"model_name": "tiny-random", "num_train_epochs": 2},
                       search={"learning_rate": {"choice": [1.0e-3, 3.0e-3]}},
                       tune={"searcher": "grid", "scheduler": "fifo", "seeds": [1, 2],
                             "resources_per_trial": {"cpu": 1}, "keep_top_k": 4, "reuse_actors": False})


@pytest.fixture(scope="module")
def uninterrupted(space, run_sweep) -> Path:
    """The sweep run once, start to end."""
    run_sweep(space, "--output", space.parent / "uninterrupted")
    return space.parent / "uninterrupted" / NAME


@pytest.mark.slow
def test_ctrl_c_between_trials_then_resume_gives_the_uninterrupted_metrics(space, uninterrupted, run_sweep, board,
                                                                           trials, kill_after_a_trial, comparable):
    """Ctrl-C (to the process group, as a terminal sends it); kill -9 between trials: the next test and
    test_run_faults.py; either mid-trial: test_run_midtrial.py."""
    out = space.parent / "resumed"
    tune_dir = out / NAME / "tune"
    finished = [t for t, s in kill_after_a_trial(space, out, tune_dir, signum=signal.SIGINT).items()
                if s["status"] == "TERMINATED"]
    assert 0 < len(finished) < 4 and not (out / NAME / "leaderboard.parquet").exists()
    sizes = {t: next(tune_dir.glob(f"*{t}*/result.json")).stat().st_size for t in finished}

    run_sweep(space, "--output", out, "--resume")
    assert_same_results(out / NAME, uninterrupted, board, trials, comparable)
    for trial, size in sizes.items():  # a finished trial is not run again
        assert next(tune_dir.glob(f"*{trial}*/result.json")).stat().st_size == size


@pytest.mark.slow
def test_another_driver_in_another_folder_resumes_from_the_shared_storage(space, uninterrupted, board, trials,
                                                                          kill_after_a_trial, repo_root, comparable):
    # the same sweep with its Tune tree in shared storage (a URI): the first driver is killed on "machine A";
    # "machine B" has its own working folder and output folder, a copy of the YAML, and only the URI in common
    shared = space.parent / "shared"
    doc = yaml.safe_load(space.read_text())
    doc["tune"]["storage_path"] = f"file://{shared}"
    machine_a, machine_b = space.parent / "machine_a", space.parent / "machine_b"
    for folder in (machine_a, machine_b):
        folder.mkdir()
        (folder / "repeat.yaml").write_text(yaml.safe_dump(doc))
    finished = [t for t, s in kill_after_a_trial(machine_a / "repeat.yaml", machine_a / "out", shared / NAME).items()
                if s["status"] == "TERMINATED"]
    assert 0 < len(finished) < 4

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(repo_root)}
    done = subprocess.run([sys.executable, "-m", "sweep.run", "repeat.yaml", "--output", "out", "--resume"],
                          cwd=machine_b, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_same_results(machine_b / "out" / NAME, uninterrupted, board, trials, comparable)
    runs = trials(board(machine_b / "out" / NAME))
    assert runs["trial_id"].is_unique and len(runs) == 4  # every trial exactly once
    assert set(finished) <= set(runs["trial_id"])  # the trials machine A finished are in B's leaderboard as they were
