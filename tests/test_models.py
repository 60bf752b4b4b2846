"""sweep.models: a sweep folder's kept checkpoints, best first by its own rule (ties by the rule's tie-break),
found where they were recorded or by trial id below the folder."""
import pandas as pd
import pytest

from sweep.models import best_checkpoint, kept_checkpoints
from zs_core.checkpoint import CONFIG_FILE, HEAD_FILE
from zs_core.errors import InputError


def fake(path):  # what is_checkpoint looks for
    path.mkdir(parents=True)
    (path / CONFIG_FILE).write_text("{}")
    (path / HEAD_FILE).write_bytes(b"")
    return path


def test_best_checkpoint_is_the_best_finished_trial_that_kept_one(tmp_path):
    kept = fake(tmp_path / "tune" / "train_trial_0e5cf_00001_1_seed=2_2026-11-25" / "checkpoint_000000")
    moved = fake(tmp_path / "tune" / "train_trial_0e5cf_00002_2_seed=3_2026-11-25" / "checkpoint_000000")
    board = pd.DataFrame({
        "trial_id": ["0e5cf_00000", "0e5cf_00001", "0e5cf_00002", "0e5cf_00003", "random"],
        "status": ["ERROR", "TERMINATED", "STOPPED_EARLY", "TERMINATED", "TERMINATED"],
        "dev/sent_f1": [0.99, 0.50, 0.70, 0.90, 0.95],
        "checkpoint": [str(kept), str(kept), "/elsewhere/checkpoint_000000", "/gone/checkpoint_000000", None]})
    board.to_parquet(tmp_path / "leaderboard.parquet")
    # 00000 failed, 00003's checkpoint is gone; 00002's recorded path moved but its trial id is found below
    assert best_checkpoint(tmp_path) == moved.resolve()  # no sweep.yaml: dev/sent_f1, max
    (tmp_path / "sweep.yaml").write_text("tune: {metric: dev/sent_f1, mode: min}\n")
    assert best_checkpoint(tmp_path) == kept.resolve()
    assert kept_checkpoints(tmp_path) == [kept.resolve(), moved.resolve()]
    board.drop(columns=["checkpoint"]).to_parquet(tmp_path / "leaderboard.parquet")
    assert kept_checkpoints(tmp_path) == sorted([kept.resolve(), moved.resolve()])  # every checkpoint below


def test_ties_in_the_metric_go_to_the_tiebreak_never_to_the_order(tmp_path):
    paths = [fake(tmp_path / f"t{i}" / "checkpoint_000000") for i in range(3)]
    pd.DataFrame({"trial_id": ["t0", "t1", "t2"], "status": ["TERMINATED"] * 3, "dev/sent_f1": [0.8, 0.8, 0.7],
                  "dev/loss": [0.5, 0.4, 0.1], "checkpoint": [str(p) for p in paths]}
                 ).to_parquet(tmp_path / "leaderboard.parquet")
    assert kept_checkpoints(tmp_path) == [paths[1].resolve(), paths[0].resolve(), paths[2].resolve()]


def test_a_corrupt_leaderboard_is_one_line(tmp_path):
    (tmp_path / "leaderboard.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"leaderboard\.parquet: cannot be read as Parquet"):
        kept_checkpoints(tmp_path)
