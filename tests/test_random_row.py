"""One random floor: the random row of leaderboard.parquet (sweep.run) and of heads.parquet (sweep.heads)
hold the same numbers for the same split, through the real command lines."""
import os
import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
def test_the_random_row_is_the_same_in_both_leaderboards(tmp_path, run_sweep, write_space, board, repo_root):
    space = write_space(tmp_path, "floor", tune={"searcher": "grid", "scheduler": "fifo", "seeds": [1],
                                                 "resources_per_trial": {"cpu": 1}, "keep_top_k": 0})
    run_sweep(space, "--output", tmp_path / "run")
    random = board(tmp_path / "run" / "floor").set_index("trial_id").loc["random"]
    heads = tmp_path / "heads"
    done = subprocess.run([sys.executable, "-m", "sweep.heads", "--model", "tiny-random", "--limit", "32",
                           "--output", str(heads)], cwd=repo_root, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = pd.read_parquet(heads / "heads.parquet")
    floor = rows[rows["method"] == "random"].set_index("threshold_kind")
    assert (floor["split"] == "test").all() and (floor["n_sentences"] == 32).all()
    for metric in ("precision", "recall", "f1", "f05"):
        assert floor.loc["fixed", metric] == random[f"test/tok_{metric}"]
        assert floor.loc["dev_calibrated", metric] == random[f"test/tok_cal_{metric}"]
    assert floor.loc["dev_calibrated", "threshold"] == random["test/tok_cal_threshold"] == \
        random["dev/tok_cal_threshold"]
    for metric in ("map", "auroc", "corr"):
        assert floor.loc["fixed", metric] == floor.loc["dev_calibrated", metric] == random[f"test/tok_{metric}"]
