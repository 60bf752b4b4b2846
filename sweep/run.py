"""python -m sweep.run SPACE.yaml: a hyperparameter search as Ray Tune trials, one GPU each.

Writes OUT/<name>/leaderboard.parquet (one row per trial and a random baseline row),
leaderboard_by_config.parquet (mean, std, n over seeds), curves.parquet (every epoch of every trial)
and sweep.yaml (the resolved sweep); Tune's own result tree lives beside them.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml

from sweep.common import (Parser, check_output_dir, cli, provenance, start_ray, trial_resources)
from sweep.leaderboard import by_config, top_table, write_parquet
from sweep.results import leaderboard_rows, select_kept
from sweep.space import Sweep, load_sweep, smoke, to_tune_space
from sweep.trial import SEED_INDEX, test_metrics, train_trial
from zs_core.config import build_config
from zs_core.data import load_splits
from zs_core.errors import InputError
from zs_core.train import random_baseline

DEMO = Path(__file__).resolve().parent.parent / "search_spaces" / "demo.yaml"
REPORTED = {"epoch", "train/loss", "train/sentences_per_s", "seconds"}
SENTENCE = ("precision", "recall", "f1", "accuracy")
TOKEN = ("precision", "recall", "f1", "f05", "map")
TOKEN_CAL = ("precision", "recall", "f1", "f05")


def reported_metrics(soft_attention: bool) -> set[str]:
    """What a trial reports each epoch: the metrics a sweep may select on."""
    keys = REPORTED | {f"dev/sent_{k}" for k in SENTENCE}
    if soft_attention:
        keys |= {f"dev/tok_{k}" for k in TOKEN} | {f"dev/tok_cal_{k}" for k in TOKEN_CAL} | {"dev/threshold"}
    return keys


def parse_args(argv):
    p = Parser(prog="python -m sweep.run", description=__doc__.splitlines()[0])
    p.add_argument("space", nargs="?", help="a sweep YAML (search_spaces/*.yaml) or a seed .conf file")
    p.add_argument("overrides", nargs="*", help="key=value overrides of fixed config keys")
    p.add_argument("--output", default="runs", help="output folder (default runs/)")
    p.add_argument("--smoke-test", action="store_true", help="tiny-random, 2 trials, 1 epoch, 32 sentences")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep of the same name")
    p.add_argument("--fresh", action="store_true", help="delete an earlier sweep of the same name first")
    p.add_argument("--address", default=None, help="join a running Ray cluster (ray start --head)")
    p.add_argument("--dashboard-host", default="127.0.0.1", help="the dashboard's bind address")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.space and not args.smoke_test:
        raise InputError("python -m sweep.run: give a sweep YAML, e.g. search_spaces/demo.yaml")
    sweep = load_sweep(args.space or DEMO, args.overrides)
    if args.smoke_test:
        sweep = smoke(sweep)
    soft = build_config(sweep.fixed, sweep.source).model.soft_attention
    if sweep.tune.metric not in reported_metrics(soft):
        raise InputError(f"{sweep.source}: tune.metric {sweep.tune.metric!r} is reported by no trial; "
                         f"expected one of: {', '.join(sorted(reported_metrics(soft)))}")
    out = check_output_dir(args.output) / sweep.name
    if args.resume and not (out / "tune").is_dir():
        raise InputError(f"{out}: no sweep to resume there")
    if not args.resume and (out / "tune").exists():
        if not (args.fresh or args.smoke_test):  # smoke runs are disposable
            raise InputError(f"{out}: holds an earlier sweep; --resume to continue it or --fresh to replace it")
        shutil.rmtree(out)
    splits = load_splits(sweep.data)
    run_sweep(sweep, splits, out, args)
    return 0


def run_sweep(sweep: Sweep, splits, out: Path, args) -> None:
    import ray
    from ray import tune

    url = start_ray(args.address, args.dashboard_host, args.num_cpus)
    print(f"Ray dashboard: {url}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(f"# {' '.join(['python -m sweep.run', *sys.argv[1:]])}\n"
                                    + yaml.safe_dump(sweep.resolved(), sort_keys=False))
    want = sweep.tune.resources_per_trial
    resources, notice = trial_resources(want.get("gpu", 0), want.get("cpu"))
    if notice:
        print(notice, flush=True)
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, splits=splits, fixed=sweep.fixed, seeds=sweep.tune.seeds,
                             metric=sweep.tune.metric, mode=sweep.tune.mode), resources)
    storage = sweep.tune.storage_path or str(out.resolve())
    if args.resume:
        tuner = tune.Tuner.restore(f"{storage.rstrip('/')}/tune", trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
    else:
        tuner = make_tuner(sweep, trainable, storage)
    grid = tuner.fit()
    rows = leaderboard_rows(grid, sweep, splits)
    kept = select_kept(rows, sweep.tune)
    evaluate_kept(rows, kept, splits, resources)
    rows.append({"trial_id": "random", "method": "random", "status": "TERMINATED",
                 **random_baseline(splits, build_config(sweep.fixed, sweep.source))})
    write_results(rows, sweep, out)
    ray.shutdown() if not args.address else None


def make_tuner(sweep: Sweep, trainable, storage: str):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, Repeater

    t = sweep.tune
    space = to_tune_space(sweep.search)
    n_seeds = len(t.seeds)
    if t.searcher == "grid" or not space:  # a grid, or one fixed configuration: every point once per seed
        search_alg = BasicVariantGenerator()
        space["seed"] = tune.grid_search(list(t.seeds))
        num_samples = 1
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(seed=t.seeds[0]) if t.searcher == "optuna" else \
            optuna.samplers.RandomSampler(seed=t.seeds[0])
        search_alg = Repeater(OptunaSearch(sampler=sampler, metric=t.metric, mode=t.mode), repeat=n_seeds)
        space[SEED_INDEX] = 0  # Repeater overwrites it with 0..n_seeds-1
        num_samples = t.num_samples * n_seeds
    epochs = build_config(sweep.fixed, sweep.source).train.num_train_epochs
    scheduler = FIFOScheduler() if t.scheduler == "fifo" else ASHAScheduler(
        time_attr="training_iteration", max_t=max(epochs, 1), grace_period=min(t.grace_period, max(epochs, 1)),
        reduction_factor=t.reduction_factor)
    return tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=t.metric, mode=t.mode, search_alg=search_alg, scheduler=scheduler,
                                    num_samples=num_samples, max_concurrent_trials=t.max_concurrent or None),
        run_config=tune.RunConfig(
            name="tune", storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=1),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=t.metric,
                                                    checkpoint_score_order=t.mode)),
    )


def evaluate_kept(rows: list[dict], kept: list[dict], splits, resources: dict) -> None:
    """Score the kept checkpoints on test, each as a Ray task with a trial's resources."""
    import ray

    if not kept:
        return
    task = ray.remote(num_cpus=resources.get("cpu", 1), num_gpus=resources.get("gpu", 0))(test_metrics)
    splits_ref = ray.put(splits)
    futures = [task.remote(row["checkpoint"], splits_ref, row.get("dev/threshold")) for row in kept]
    for row, metrics in zip(kept, ray.get(futures)):
        row.update(metrics)


def write_results(rows: list[dict], sweep: Sweep, out: Path) -> None:
    stamp = provenance()
    curves = [r.pop("_curve") for r in rows if "_curve" in r]
    frame = pd.DataFrame([{**row, **stamp} for row in rows])
    write_parquet(frame, out / "leaderboard.parquet")
    write_parquet(by_config(frame), out / "leaderboard_by_config.parquet")
    if curves:
        write_parquet(pd.concat(curves, ignore_index=True), out / "curves.parquet")
    shown = ["trial_id", "status", "seed", *sweep.search, "best_epoch", sweep.tune.metric, "dev/tok_map",
             "dev/tok_cal_f1", "test/tok_f1", "test/tok_cal_f1", "test/tok_map"]
    print(f"\nTop 10 by {sweep.tune.metric} ({sweep.tune.mode}):")
    print(top_table(frame, sweep.tune.metric, sweep.tune.mode, shown))
    print(f"\nwrote {out / 'leaderboard.parquet'} ({len(frame)} rows) and {out / 'leaderboard_by_config.parquet'}")


if __name__ == "__main__":
    sys.exit(main())
