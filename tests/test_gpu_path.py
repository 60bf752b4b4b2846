"""The GPU branches of sweep.run and sweep.heads on a Ray node that advertises one GPU (``num_gpus=1``) on
this CPU machine: Ray schedules by its resource table, so trials and the test-evaluation tasks are given the
GPU, while torch, choosing its device from torch.cuda.is_available(), still runs on the CPU.

ray_cluster, run_sweep, write_space, board, trials and repo_root are conftest fixtures.
"""
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def gpu_node(ray_cluster):
    """One node: 2 CPUs and 1 GPU in Ray's table; its dashboard (Ray's state API) on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return ray_cluster({"num_cpus": 2, "num_gpus": 1, "include_dashboard": True, "dashboard_port": port})[0]


def trial_bundles(address: str, trainable: str) -> list[dict]:
    """Ray's own record (its state API) of the resources each trial of ``trainable`` held: its placement group."""
    from ray.util.state import list_actors, list_placement_groups

    groups = {g.placement_group_id: g for g in list_placement_groups(address=address, detail=True)}
    return [groups[a.placement_group_id].bundles[0]["unit_resources"]
            for a in list_actors(address=address, detail=True) if a.repr_name == trainable]


@pytest.mark.slow
def test_a_gpu_fraction_packs_two_trials_on_one_gpu_and_test_runs_as_gpu_tasks(
        tmp_path, gpu_node, write_space, run_sweep, board, trials):
    from ray.util.state import list_tasks

    space = write_space(tmp_path, "packed", tune={"searcher": "random", "scheduler": "fifo", "seeds": [1, 2],
                                                  "resources_per_trial": {"gpu": 0.5}, "keep_top_k": 2,
                                                  "reuse_actors": False})  # a process per trial
    log = run_sweep(space, "--output", tmp_path / "out", "--address", gpu_node.address).stdout
    notice = "notice: 0.5 GPU and 1 CPU per trial: 2 trials share a GPU, 2 trials at once on this cluster's 1 GPU"
    assert f"{notice}\n" in log
    assert "no GPU" not in log
    runs = trials(board(tmp_path / "out" / "packed"))
    assert sorted(runs["seed"]) == [1, 2] and (runs["status"] == "TERMINATED").all()
    assert runs["pid"].nunique() == 2  # two trial processes, both given the one GPU
    assert runs["gpu_ids"].tolist() == ["0", "0"] and runs["device"].tolist() == ["cpu", "cpu"]
    assert runs["test/tok_f1"].notna().all() and runs["checkpoint"].notna().all()  # both kept and scored on test
    assert trial_bundles(gpu_node.address, "train_trial") == [{"CPU": 1.0, "GPU": 0.5}] * 2
    tasks = list_tasks(address=gpu_node.address, filters=[("name", "=", "evaluate_on_test")], detail=True)
    assert [(t.required_resources, t.state) for t in tasks] == [({"CPU": 1.0, "GPU": 0.5}, "FINISHED")] * 2


@pytest.mark.slow
def test_heads_takes_a_whole_gpu_per_model_and_scans_on_the_cpu(tmp_path, gpu_node, repo_root):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "sweep.heads", "--smoke-test", "--output", str(tmp_path / "heads"),
                           "--address", gpu_node.address], cwd=repo_root, env=env, timeout=300,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "no GPU" not in proc.stdout and "notice" not in proc.stdout
    frame = pd.read_parquet(tmp_path / "heads" / "heads.parquet")
    assert set(frame["method"]) == {"head", "random"} and frame["map"].notna().all()
    assert trial_bundles(gpu_node.address, "heads_trial") == [{"CPU": 1.0, "GPU": 1.0}]
