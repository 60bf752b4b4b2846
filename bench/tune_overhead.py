"""Tune overhead per trial: sweep.run's own trainable through Ray Tune, versus the same work in a plain loop.

    python bench/tune_overhead.py                         # 12 trials, serial, reused and fresh processes
    python bench/tune_overhead.py --trials 24 --results bench/RESULTS.md

Each trial does almost nothing: tiny-random, 1 epoch on 8 sentences (dev 8), one checkpoint. The Tune run is
the sweep's real path (Optuna TPE + Repeater seeds, ASHA, best-checkpoint saving, 1 CPU per trial, one trial
at a time, Ray already started); the loop does each trial's work in this process (build, train, evaluate,
save the checkpoint). Overhead per trial = (Tune's wall time - the loop's) / trials. Goal: under 2 s.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import yaml  # noqa: E402

from sweep.space import load_sweep  # noqa: E402
from sweep.trial import train_trial, trial_config  # noqa: E402
from zs_core.checkpoint import save_checkpoint  # noqa: E402
from zs_core.config import build_config  # noqa: E402
from zs_core.data import load_splits  # noqa: E402
from zs_core.encoders import load_tokenizer  # noqa: E402
from zs_core.model import build_model  # noqa: E402
from zs_core.train import train  # noqa: E402

SECTION = "## Tune overhead"


def bench_sweep(folder: Path, trials: int, reuse: bool):
    doc = {"name": f"overhead-{'reuse' if reuse else 'fresh'}",
           "data": {"dataset": "wnut16", "limit": {"train": 8, "dev": 8, "test": 8}},
           "fixed": {"model_name": "tiny-random", "num_train_epochs": 1},
           "search": {"learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}},
           "tune": {"num_samples": trials // 2, "seeds": [1, 2], "max_concurrent": 1, "reuse_actors": reuse,
                    "resources_per_trial": {"cpu": 1}}}
    path = folder / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_sweep(path)


def tune_seconds(sweep, splits, storage: Path) -> tuple[float, list[dict]]:
    from ray import tune

    from sweep.run import make_tuner

    trainable = tune.with_resources(tune.with_parameters(
        train_trial, splits=splits, fixed=sweep.fixed, seeds=sweep.tune.seeds, metric=sweep.tune.metric,
        mode=sweep.tune.mode), {"cpu": 1})
    tuner = make_tuner(sweep, trainable, str(storage), sweep.name)
    start = time.perf_counter()
    grid = tuner.fit()
    seconds = time.perf_counter() - start
    assert not grid.errors and len(grid) == sweep.tune.num_samples * len(sweep.tune.seeds)
    return seconds, [r.config for r in grid]


def loop_seconds(configs: list[dict], sweep, splits) -> float:
    """The same trials' work, one after another in this process, 1 thread (as a 1-CPU trial)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    for config in configs:
        cfg = build_config(trial_config(config, sweep.fixed, sweep.tune.seeds), "bench")
        tokenizer = load_tokenizer(cfg.model.model_name)
        model = build_model(cfg.model, cfg.train.seed)
        for _ in train(cfg, model, tokenizer, splits, "cpu"):
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(os.path.join(tmp, "model"), model, tokenizer, cfg)
    return time.perf_counter() - start


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md; other sections stay as they are."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines, out, skipping = old.splitlines(), [], False
    for line in lines:
        if line.startswith("## "):
            skipping = line.strip() == SECTION
            if skipping:
                out.extend(text.rstrip("\n").splitlines())
        if not skipping:
            out.append(line)
    if SECTION not in out:
        out.extend(["", *text.rstrip("\n").splitlines()])
    path.write_text("\n".join(out).rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials per Tune run (even: 2 seeds each)")
    parser.add_argument("--results", type=Path, default=None, help="update this file's '## Tune overhead'")
    args = parser.parse_args()
    import ray

    from sweep.common import quiet_libraries

    quiet_libraries()
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    init = time.perf_counter() - start
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for reuse in (True, False):
            sweep = bench_sweep(Path(tmp), args.trials, reuse)
            splits = load_splits(sweep.data)
            tuned, configs = tune_seconds(sweep, splits, Path(tmp) / "tune")
            plain = loop_seconds(configs, sweep, splits)
            rows.append((reuse, len(configs), tuned, plain, (tuned - plain) / len(configs)))
    ray.shutdown()
    load = os.getloadavg()[0]
    text = [SECTION, "", f"`python bench/tune_overhead.py --trials {args.trials}` on {platform.machine()}, "
            f"{os.cpu_count()} cores (load average {load:.1f} at the end; other jobs shared the cores), torch "
            f"{torch.__version__}, ray {ray.__version__}. Trials of ~nothing (tiny-random, 8 sentences, 1 epoch, "
            f"a checkpoint), one at a time, 1 CPU each; Ray started beforehand ({init:.1f} s, not counted).", "",
            "| trial processes | trials | Tune wall s | plain loop s | overhead per trial s | goal |",
            "|---|---|---|---|---|---|"]
    for reuse, n, tuned, plain, per in rows:
        kind = "reused (sweep.run's default)" if reuse else "fresh per trial (reuse_actors: false)"
        goal = ("met" if per < 2 else "MISSED") + " (< 2 s)" if reuse else "(for comparison)"
        text.append(f"| {kind} | {n} | {tuned:.1f} | {plain:.1f} | {per:.2f} | {goal} |")
    text.append("")
    text.append("Overhead = (Tune's wall time - the loop's) / trials: process start-up and torch imports "
                "(once per process), Optuna/Repeater/ASHA bookkeeping, result and checkpoint copies into "
                "the Tune tree, experiment-state snapshots.")
    print("\n".join(text))
    if args.results:
        write_section(args.results, "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
