"""One random floor: the random row of leaderboard.parquet (sweep.run) and of heads.parquet (sweep.heads)
hold the same numbers for the same split, through the real command lines."""
import pandas as pd
import pytest


@pytest.mark.slow
def test_the_random_row_is_the_same_in_both_leaderboards(smoke_sweep, smoke_heads, board):
    """Both smoke tests (conftest) read wnut16's first 32 sentences of each split."""
    random = board(smoke_sweep[1]).set_index("trial_id").loc["random"]
    rows = pd.read_parquet(smoke_heads[1] / "heads.parquet")
    floor = rows[rows["method"] == "random"].set_index("threshold_kind")
    assert (floor["split"] == "test").all() and (floor["n_sentences"] == 32).all()
    for metric in ("precision", "recall", "f1", "f05"):
        assert floor.loc["fixed", metric] == random[f"test/tok_{metric}"]
        assert floor.loc["dev_calibrated", metric] == random[f"test/tok_cal_{metric}"]
    assert floor.loc["dev_calibrated", "threshold"] == random["test/tok_cal_threshold"] == \
        random["dev/tok_cal_threshold"]
    for metric in ("map", "auroc", "corr"):
        assert floor.loc["fixed", metric] == floor.loc["dev_calibrated", metric] == random[f"test/tok_{metric}"]
