"""Shared test setup: offline Hugging Face, the minilm tokenizer and encoders, and the helpers several test
modules use, as fixtures (no test module imports another): the marker task, head-scan references, sweep.run
helpers and headless Chromium."""
import copy
import glob
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported anywhere: nothing is downloaded

import pytest
import torch
import yaml

# One intra-op thread: the tests run tiny tensors on 2 cores shared with other jobs, where a second
# OpenMP thread spinning for a busy core made minilm forwards ~30x slower. Results do not depend on it.
torch.set_num_threads(int(os.environ.get("ZS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def tokenizer():
    """The minilm WordPiece tokenizer (tiny-random uses it too). Read-only: do not change it in a test."""
    from zs_core.encoders import load_tokenizer

    return load_tokenizer("minilm")


@pytest.fixture(scope="session")
def minilm_eager():
    """all-MiniLM-L6-v2 with eager attention, in eval mode. Read-only: do not train or modify it."""
    from zs_core.encoders import load_encoder

    return load_encoder("minilm", attentions=True).eval()


@pytest.fixture
def tiny_eager():
    """A fresh tiny-random encoder with eager attention, in eval mode (each test gets its own copy)."""
    from zs_core.encoders import load_encoder

    return load_encoder("tiny-random", attentions=True).eval()



# --- the marker task: a tiny model trained on an easy made-up task (attribution, predict/evaluate) ---

MARKER = "zebra"
FILLER = "the a cat dog sat on mat house tree car road big small red blue green runs walks".split()


def _write_marker_split(path: Path, n: int, rng: random.Random, every: int = 2, lengths=(4, 8),
                        decoy: str | None = None) -> None:
    """n sentences of ``lengths`` filler words; every ``every``-th one has the marker (labelled i) in a random
    place, and with ``decoy`` that word too, unlabelled (a second cue sentence labels cannot tell apart)."""
    lines = []
    for k in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(*lengths))]
        labels = ["c"] * len(words)
        if k % every == 0:
            j = rng.randrange(len(words))
            words[j], labels[j] = MARKER, "i"
            if decoy:
                at = rng.randrange(len(words) + 1)
                words.insert(at, decoy)
                labels.insert(at, "c")
        lines += [f"{w}\t{lab}" for w, lab in zip(words, labels)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def marker_split():
    """``_write_marker_split``: a function (path, n, rng, every=2, lengths=(4, 8), decoy=None)."""
    return _write_marker_split


@pytest.fixture(scope="session")
def marker_task(tmp_path_factory) -> dict:
    """{"data": folder with train/dev/test.tsv, "checkpoint": a tiny-random soft-attention model trained on it,
    "marker": the marker word}. Positive sentences hold the marker once, labelled ``i``; every other word is
    ``c``. Trained once per test session; read-only."""
    from zs_core.checkpoint import save_checkpoint
    from zs_core.config import DataConfig, build_config
    from zs_core.data import load_splits
    from zs_core.encoders import load_tokenizer
    from zs_core.model import build_model
    from zs_core.train import train

    root = tmp_path_factory.mktemp("marker")
    rng = random.Random(0)
    for split, n in (("train", 160), ("dev", 20), ("test", 40)):
        _write_marker_split(root / f"{split}.tsv", n, rng)
    cfg = build_config({"model_name": "tiny-random", "num_train_epochs": 3, "learning_rate": 1e-3,
                        "warmup_ratio": 0.0, "attention_evidence_size": 16, "final_hidden_layer_size": 16},
                       "marker task")
    model, tokenizer = build_model(cfg.model, 1), load_tokenizer("tiny-random")
    for _ in train(cfg, model, tokenizer, load_splits(DataConfig(dir=str(root),
                                                               positive_labels=("i",)))):
        pass
    return {"data": root, "checkpoint": save_checkpoint(root / "checkpoint", model, tokenizer, cfg),
            "marker": MARKER}


# --- head scans: WNUT dev sentences and a brute-force MAP over transformers' output_attentions ---

@pytest.fixture(scope="session")
def dev_sentences():
    """A function: n WNUT-2016 dev sentences, the first n - 2 with a gold word, the last 2 without."""
    from zs_core.config import DataConfig
    from zs_core.data import load_splits

    def sentences(n: int):
        dev = load_splits(DataConfig(), ("dev",))["dev"]
        return [s for s in dev if any(s.gold)][: n - 2] + [s for s in dev if not any(s.gold)][:2]

    return sentences


@pytest.fixture(scope="session")
def brute_force_map():
    """A function: (encoder, tokenizer, sentences, poolings) -> [P, L, H] MAP from output_attentions, a loop
    over heads and sentences, sklearn per sentence."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    def brute_force(encoder, tokenizer, sents, poolings=("received", "cls")) -> np.ndarray:
        enc = tokenizer([list(s.words) for s in sents], is_split_into_words=True, truncation=True, max_length=128,
                        padding=True, return_tensors="pt")
        with torch.no_grad():
            out = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
        n_layers, n_heads = len(out.attentions), out.attentions[0].shape[1]
        result = np.zeros((len(poolings), n_layers, n_heads))
        for p, pooling in enumerate(poolings):
            for layer in range(n_layers):
                for head in range(n_heads):
                    aps = []
                    for b, sentence in enumerate(sents):
                        att = out.attentions[layer][b, head].double()                 # [T(query), T(key)]
                        real = enc["attention_mask"][b].bool()
                        piece = att[real].mean(0) if pooling == "received" else att[0]
                        word_ids = enc.word_ids(b)
                        words = [max((float(piece[t]) for t, w in enumerate(word_ids) if w == i), default=0.0)
                                 for i in range(len(sentence.words))]              # special tokens: w is None
                        if any(sentence.gold):
                            aps.append(average_precision_score(sentence.gold, np.maximum(words, 0.0)))
                    result[p, layer, head] = np.mean(aps)
        return result

    return brute_force


# --- sweep.run end to end (test_run_*): the command, a tiny sweep YAML, the leaderboards ---

ROOT = Path(__file__).resolve().parent.parent
# tiny-random on the first 32 WNUT-2016 sentences of each split, 1 epoch: a trial takes seconds on a CPU
TINY = {"data": {"dataset": "wnut16", "limit": {"train": 32, "dev": 32, "test": 32}},
        "fixed": {"model_name": "tiny-random", "num_train_epochs": 1}}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root: the working folder of every ``python -m sweep.*`` the tests start."""
    return ROOT


@pytest.fixture(scope="session")
def run_sweep():
    """A function: ``python -m sweep.run ARGS`` in a fresh process, asserted to exit ``expect`` (0); its combined
    output is in .stdout."""
    def run(*args, env=None, timeout=300, expect=0) -> subprocess.CompletedProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "sweep.run", *map(str, args)], cwd=ROOT, env=env,
                              timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.returncode == expect, proc.stdout[-4000:]
        return proc

    return run


AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory, run_sweep) -> tuple[str, Path]:
    """``python -m sweep.run --smoke-test --output OUT`` as the README gives it: (its output, OUT/demo-smoke).
    Shared by several modules: read it, write elsewhere."""
    out = tmp_path_factory.mktemp("smoke_sweep")
    return run_sweep("--smoke-test", "--output", out).stdout, out / "demo-smoke"


@pytest.fixture(scope="session")
def smoke_heads(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``python -m sweep.heads --smoke-test --output OUT`` as the README gives it: (the process, OUT). Shared:
    read it, write elsewhere."""
    out = tmp_path_factory.mktemp("smoke_heads") / "heads"
    proc = subprocess.run([sys.executable, "-m", "sweep.heads", "--smoke-test", "--output", str(out)], cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A function: (head node args, worker node args, ...) -> (a local ``ray.cluster_utils.Cluster``, the set of
    its node ids), e.g. ``ray_cluster({"num_cpus": 2, "num_gpus": 1})``: Ray schedules by the resource table
    it is given, so a GPU node runs here on a CPU. Token authentication is on with a token of its own, which
    reaches every node and the drivers the tests start as RAY_AUTH_TOKEN_PATH, as it would on real machines.
    Shut down at the end of the test module."""
    import secrets

    from ray._private.authentication_test_utils import reset_auth_token_state
    from ray.cluster_utils import Cluster

    token = tmp_path_factory.mktemp("ray_auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    saved = {k: os.environ.get(k) for k in AUTH}
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
    os.environ.pop("RAY_AUTH_TOKEN", None)
    reset_auth_token_state()  # this process may have read the auth settings already
    clusters = []

    def start(head: dict, *workers: dict):
        cluster = Cluster(initialize_head=True, head_node_args=head)
        clusters.append(cluster)
        nodes = [cluster.add_node(**args) for args in workers]
        cluster.wait_for_nodes()
        return cluster, {cluster.head_node.node_id, *(n.node_id for n in nodes)}

    try:
        yield start
    finally:
        for cluster in clusters:
            cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_auth_token_state()


@pytest.fixture(scope="session")
def write_space():
    """A function: FOLDER/NAME.yaml, the tiny sweep (tiny-random, 32 wnut16 sentences a split, 1 epoch) with
    the given top-level parts (fixed=, search=, tune=, data=) replacing its own."""
    def write(folder: Path, name: str, **parts) -> Path:
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, **copy.deepcopy(TINY), **parts}), encoding="utf-8")
        return path

    return write


# what legitimately differs between two runs of one sweep: Tune's ids and paths, timings, the Ray node and trial
# process, the time; and the provenance of the run itself: its command line (another --output, --resume) and the
# checkout's git state. Every config, dev/* and test/* column is compared.
VARYING = {"trial_id", "checkpoint", "seconds", "created_at", "node_id", "pid", "command", "git_sha", "git_dirty"}


@pytest.fixture(scope="session")
def comparable():
    """A function: a leaderboard (or curves) frame without the columns that may differ between two runs of one
    sweep (``VARYING``, timings), its rows in the order of the ``order`` columns."""
    def drop_varying(frame, order: list[str]):
        drop = [c for c in frame.columns if c in VARYING or "seconds" in c or "sentences_per_s" in c]
        return frame.drop(columns=drop).sort_values(order, na_position="first").reset_index(drop=True)

    return drop_varying


@pytest.fixture(scope="session")
def board():
    """A function: a sweep folder's leaderboard.parquet (or, with by_config=True, leaderboard_by_config)."""
    import pandas as pd

    def read(folder: Path, by_config: bool = False):
        return pd.read_parquet(folder / ("leaderboard_by_config.parquet" if by_config else "leaderboard.parquet"))

    return read


@pytest.fixture(scope="session")
def trials():
    """A function: the trial rows of a leaderboard (the random baseline row left out)."""
    def of(frame):
        return frame[frame["method"] != "random"]

    return of


@pytest.fixture(scope="session")
def kill_when():
    """A function: start ``python -m sweep.run SPACE --output OUT [ARGS]``, send ``signum`` (SIGKILL) to its
    whole process group (the driver and its local Ray) as soon as ``until()`` holds, asserting that the sweep had
    not ended by then; after another signal the driver is given two minutes to end by itself. Returns its exit
    code."""
    import signal
    import time

    def kill(space: Path, out: Path, until, *args: str, poll: float = 0.05, signum=signal.SIGKILL) -> int:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        driver = subprocess.Popen([sys.executable, "-m", "sweep.run", str(space), "--output", str(out), *args],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            deadline = time.time() + 240
            while not until():
                assert driver.poll() is None and time.time() < deadline, "the sweep ended before the kill"
                time.sleep(poll)
            os.killpg(driver.pid, signum)
            return driver.wait(timeout=120)
        finally:
            try:
                os.killpg(driver.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            driver.wait()

    return kill


@pytest.fixture(scope="session")
def kill_after_a_trial(trial_states, kill_when):
    """A function: kill a sweep (``kill_when``) once a trial has TERMINATED in TUNE_DIR; its trial table."""
    def kill(space: Path, out: Path, tune_dir: Path, poll: float = 0.05, **signal) -> dict[str, dict]:
        kill_when(space, out, lambda: any(s["status"] == "TERMINATED" for s in trial_states(tune_dir).values()),
                  poll=poll, **signal)
        return trial_states(tune_dir)

    return kill


@pytest.fixture(scope="session")
def trial_states():
    """A function: Tune result tree -> {trial_id: {status, num_failures}} from its experiment state (empty
    while not yet written)."""
    def states_of(tune_dir: Path) -> dict[str, dict]:
        states = {}
        for name in glob.glob(str(tune_dir / "experiment_state*.json")):
            try:
                doc = json.loads(Path(name).read_text())
            except (OSError, ValueError):
                continue
            for trial, runtime in doc["trial_data"]:
                trial, runtime = json.loads(trial), json.loads(runtime)
                states[trial["trial_id"]] = {"status": trial["status"], "num_failures": runtime["num_failures"]}
        return states

    return states_of


# --- headless Chromium for the HTML report tests ---

class Chromium:
    """Debian's headless Chromium: run it on a page with the flags the tests need, read its console log."""

    # No network, no first-run UI, no background services: a page is rendered, then Chromium exits.
    FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--enable-logging=stderr", "--v=0")

    def __init__(self, binary: str):
        self.binary = binary

    def run(self, url: str, profile: Path, *extra: str, timeout: int = 180) -> subprocess.CompletedProcess:
        """Chromium on ``url`` with a fresh profile folder; stdout (e.g. --dump-dom) and stderr (its log) as text."""
        command = [self.binary, *self.FLAGS, f"--user-data-dir={profile}", *extra, url]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        return proc

    @staticmethod
    def console_messages(log: str) -> list[str]:
        """The page's console output in Chromium's stderr log (``...:CONSOLE:N] "message", source: ...``).

        Chromium logs every console message, console.error and uncaught exceptions included, at INFO level,
        so a page that should log nothing is checked by asking for none at all.
        """
        return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """Chromium at /usr/bin/chromium or on PATH; the test is skipped when there is none (never installed here)."""
    found = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium at /usr/bin/chromium or on PATH: install Debian's chromium and chromium-driver")
    return Chromium(found)


@pytest.fixture
def two_nodes(ray_cluster):
    """A head and a worker node, 1 CPU each, with token authentication on (``ray_cluster``)."""
    return ray_cluster({"num_cpus": 1}, {"num_cpus": 1})
