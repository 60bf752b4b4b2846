"""One sweep across a two-node Ray cluster (the fitting of trial resources: test_resources.py)."""
import pytest

# two_nodes, run_sweep, write_space, board and trials are conftest fixtures


@pytest.mark.slow
def test_a_sweep_runs_across_two_nodes_into_one_leaderboard(tmp_path, two_nodes, write_space, run_sweep, board, trials):
    cluster, node_ids = two_nodes
    shared = tmp_path / "shared"  # the folder every node sees, given as a URI
    # a fresh process per trial: the first two trials start together, one on each node (with reused
    # processes, a node whose process started first may run every trial while the other still starts)
    space = write_space(tmp_path, "cluster", tune={"searcher": "random", "scheduler": "fifo", "seeds": [1, 2],
                                                   "resources_per_trial": {"gpu": 1}, "keep_top_k": 1,
                                                   "reuse_actors": False, "storage_path": f"file://{shared}"})
    # the driver gets the cluster's token as the nodes did: RAY_AUTH_TOKEN_PATH in its environment
    log = run_sweep(space, "--output", tmp_path / "out", "--address", cluster.address).stdout
    assert "notice: no GPU in this Ray cluster; trials run on CPU with 1 core each" in log
    runs = trials(board(tmp_path / "out" / "cluster"))
    assert len(runs) == 2 and (runs["status"] == "TERMINATED").all()
    assert set(runs["node_id"]) == node_ids  # trials ran on both nodes
    assert (shared / "cluster").is_dir() and not (tmp_path / "out" / "cluster" / "tune").exists()
    kept = runs[runs["checkpoint"].notna()]
    assert len(kept) == 1 and kept["checkpoint"].iloc[0].startswith(str(shared / "cluster"))
    assert len(list((shared / "cluster").glob("*/checkpoint_*"))) == 1
