"""Process and Ray-cluster plumbing of bench/faults.py: start a command, wait for a fault point, read what Tune
recorded (result.json, experiment state), run a command on a fresh 2-node cluster and remove its worker."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(module: str, args: list, log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """``python -m MODULE ARGS`` in its own process group, its output to LOG."""
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=cwd, stdout=log.open("w"),
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.STDOUT,
                            start_new_session=True)


def run(module: str, args: list, log: Path, cwd: Path = ROOT) -> tuple[int, float]:
    began = time.monotonic()
    return start(module, args, log, cwd).wait(timeout=900), time.monotonic() - began


def wait_until(until, proc: subprocess.Popen, log: Path, limit: float = 400) -> None:
    deadline = time.time() + limit
    while not until():
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"the run ended (or hung) before the fault:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def reports(tune_dir: Path) -> dict[str, list[dict]]:
    """trial folder -> every result it reported (its result.json: all runs of it)."""
    return {Path(p).parent.name: [json.loads(x) for x in Path(p).read_text().splitlines() if x.strip()]
            for p in glob.glob(str(tune_dir / "*" / "result.json"))}


def failures(tune_dir: Path) -> list[int]:
    """Tune's num_failures of every trial, from its experiment state."""
    docs = [json.loads(Path(name).read_text()) for name in glob.glob(str(tune_dir / "experiment_state*.json"))]
    return sorted({json.loads(trial)["trial_id"]: json.loads(runtime)["num_failures"]
                   for doc in docs for trial, runtime in doc["trial_data"]}.values())


def on_two_nodes(folder: Path, command, until) -> dict:
    """On a fresh ray.cluster_utils.Cluster (head + worker, 1 CPU each, token authentication on as in the
    tests): ``command(folder/what, address)`` undisturbed ("reference"), then again ("faulted") with the worker
    removed once ``until(folder/what, cluster, worker node)()`` holds. -> {what: (exit code, seconds, log)}."""
    from ray._private.authentication_test_utils import reset_auth_token_state
    from ray.cluster_utils import Cluster

    folder.mkdir(parents=True)
    (folder / "auth_token").write_text(os.urandom(32).hex())
    saved, out = dict(os.environ), {}
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(folder / "auth_token")})
    reset_auth_token_state()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        for what in ("reference", "faulted"):
            (folder / what).mkdir()
            began, log = time.monotonic(), folder / what / "driver.log"
            driver = start(*command(folder / what, cluster.address), log)
            if what == "faulted":
                wait_until(until(folder / what, cluster, worker), driver, log)
                cluster.remove_node(worker)
            out[what] = (driver.wait(timeout=900), time.monotonic() - began, log)
    finally:
        cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        reset_auth_token_state()
    return out
