"""Resources and clusters: trial resources that fit the nodes, and one sweep across a two-node Ray cluster."""
import pytest

from sweep.common import plan_resources

# run_sweep, write_space, board, trials and two_nodes are conftest fixtures


def test_a_request_that_fits_is_kept():
    nodes = [{"CPU": 8, "GPU": 2}, {"CPU": 4}]
    assert plan_resources({"cpu": 2, "gpu": 1}, nodes) == ({"cpu": 2, "gpu": 1}, [])
    assert plan_resources({"cpu": 4}, nodes) == ({"cpu": 4}, [])
    assert plan_resources({"gpu": 0.25}, nodes) == ({"cpu": 1, "gpu": 0.25}, [])


def test_a_request_no_node_can_hold_is_shrunk_with_a_notice():
    fitted, (notice,) = plan_resources({"cpu": 16}, [{"CPU": 2}, {"CPU": 1}])
    assert fitted == {"cpu": 2} and notice.startswith("notice: ")
    fitted, (notice,) = plan_resources({"cpu": 1, "gpu": 2}, [{"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}])
    assert fitted == {"cpu": 1, "gpu": 1} and "2" in notice  # two GPUs in the cluster, but not on one node
    fitted, _ = plan_resources({"cpu": 6, "gpu": 1}, [{"CPU": 16}, {"CPU": 4, "GPU": 1}])
    assert fitted == {"cpu": 4, "gpu": 1}  # the CPUs of a node that has the GPU


def test_a_gpu_request_on_a_cpu_cluster_takes_a_whole_node_with_one_notice():
    fitted, notices = plan_resources({"gpu": 1}, [{"CPU": 2}, {"CPU": 8}])
    assert fitted == {"cpu": 8} and notices == ["notice: no GPU in this Ray cluster; trials run on CPU with 8 "
                                                "cores each"]
    assert plan_resources({}, [{"CPU": 2}]) == ({"cpu": 2}, [])  # no GPU asked: a node's CPUs, no notice


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
    assert "notice: no GPU in this Ray cluster; trials run on CPU with 1 cores each" in log
    runs = trials(board(tmp_path / "out" / "cluster"))
    assert len(runs) == 2 and (runs["status"] == "TERMINATED").all()
    assert set(runs["node_id"]) == node_ids  # trials ran on both nodes
    assert (shared / "cluster").is_dir() and not (tmp_path / "out" / "cluster" / "tune").exists()
    kept = runs[runs["checkpoint"].notna()]
    assert len(kept) == 1 and kept["checkpoint"].iloc[0].startswith(str(shared / "cluster"))
    assert len(list((shared / "cluster").glob("*/checkpoint_*"))) == 1
