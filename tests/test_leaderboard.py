"""sweep.leaderboard: printed tables name models by their short label; the Parquet keeps the path."""
import pandas as pd

from sweep.leaderboard import top_table


def test_top_table_ranks_and_shortens_model_paths():
    path = "runs/x/tune/train_trial_0e5cf_00001_1_seed=9_2026-11-25_17-59-45/checkpoint_000000"
    frame = pd.DataFrame({"model": [path, "minilm", None], "map": [0.4, 0.5, 0.1]})
    lines = top_table(frame, "map", "max", ["model", "map"]).splitlines()
    assert [line.split() for line in lines] == [["model", "map"], ["minilm", "0.5000"], ["0e5cf_00001", "0.4000"],
                                                ["NaN", "0.1000"]]
    assert frame["model"][0] == path  # the frame itself is untouched
