"""python -m sweep.run SPACE.yaml: a hyperparameter search as Ray Tune trials, one GPU each.

Writes OUT/<name>/leaderboard.parquet (one row per trial and a random baseline row),
leaderboard_by_config.parquet (mean, std, n over seeds), rules.parquet (one row per trial and selection rule:
the evaluation it picks, scored on dev and test), curves.parquet (every evaluation of every trial) and
sweep.yaml (the resolved sweep); Tune's own result tree is OUT/<name>/tune, or
STORAGE/<name> when tune.storage_path names a shared folder or a URI (s3://, gs://, ...).

On a cluster (``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the others, then
``python -m sweep.run SPACE.yaml --address HEAD:6379`` on the head): Ray 2.60 keeps token authentication
on, so every node and the driver need the head's token: copy ~/.ray/auth_token to each machine (or set
RAY_AUTH_TOKEN_PATH / RAY_AUTH_TOKEN there). Trials on several machines need tune.storage_path to be a
folder every machine sees (NFS) or a URI, so that the sweep writes one result tree.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import yaml

from sweep.common import (
    Parser,
    add_data_args,
    check_output_dir,
    cli,
    command_line,
    data_overrides,
    prog,
    start_line,
    start_ray,
)
from sweep.interrupt import (
    Interrupted,
    graceful_stop,
    lost_to_memory,
    raise_if_interrupted,
    resume_command,
    stopped_at_once,
)
from sweep.lock import LOCK_FILE, sweep_lock
from sweep.resources import fit_resources
from sweep.space import Sweep, check_encoders, load_sweep, smoke, to_tune_space
from sweep.storage import exists, has_tune_state, remove, tune_location
from sweep.text import trial_dirname
from sweep.trackers import check_trackers, tracker_callbacks
from zs_core.config import build_config
from zs_core.data import load_splits
from zs_core.errors import InputError, shown
from zs_core.files import write_text_atomic
from zs_core.protocol import RANDOM, TOK_CAL_THRESHOLD, on_dev
from zs_core.provenance import limit_notices

# torch, transformers, pandas and Ray are imported where used: bad input is reported in a second.

DEMO = Path(__file__).resolve().parent.parent / "search_spaces" / "demo.yaml"


def parser() -> Parser:
    p = Parser(prog=prog("run"), description=__doc__.splitlines()[0])
    p.add_argument("space", nargs="?", help="a sweep YAML (search_spaces/*.yaml) or a seed .conf file "
                   "(default with --smoke-test: search_spaces/demo.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value (a config key), tune.KEY=value, data.KEY=value; "
                   "values are YAML (1e-4 is a number); nested keys with dots: data.limit.train=16")
    p.add_argument("--output", default="runs", help="output folder (default runs/); the sweep goes to OUTPUT/NAME")
    p.add_argument("--smoke-test", action="store_true", help="tiny-random, 2 trials, 1 epoch, 32 sentences")
    p.add_argument("--quiet", action="store_true", help="print only the start line and the final table")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep of the same name")
    p.add_argument("--fresh", action="store_true", help="delete an earlier sweep of the same name first")
    p.add_argument("--storage", default=None, help="Tune's result tree: a shared folder or a URI, e.g. "
                   "s3://bucket/sweeps (the same as tune.storage_path=...; default OUTPUT/NAME/tune)")
    p.add_argument("--address", default=None, help="join a running Ray cluster (ray start --head), HOST:PORT")
    p.add_argument("--dashboard-host", default="127.0.0.1", help="the dashboard's bind address (local Ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    add_data_args(p)  # override the sweep's data: block; --data-root also roots a seed dataset the YAML names
    return p


def parse_args(argv: list[str] | None):
    return parser().parse_intermixed_args(argv)  # key=value overrides may come after options too


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.command = command_line("sweep.run", argv)
    args.resume_command = resume_command("sweep.run", argv)
    if args.resume and args.fresh:
        raise InputError("python -m sweep.run: give --resume or --fresh, not both")
    if args.num_cpus is not None and args.num_cpus < 1:  # 0 would leave every trial PENDING forever
        raise InputError(f"--num-cpus {args.num_cpus}: expected a positive number of CPUs")
    if not args.space and not args.smoke_test:
        raise InputError("python -m sweep.run: give a sweep YAML, e.g. search_spaces/demo.yaml")
    flags = data_overrides(args) + ([f"tune.storage_path={json.dumps(args.storage)}"] if args.storage else [])
    sweep = load_sweep(args.space or DEMO, flags + args.overrides, args.data_root)
    if args.smoke_test:
        sweep = smoke(sweep)
    check_trackers(sweep.tune.loggers, sweep.source)
    out = check_output_dir(args.output) / sweep.name
    check_output_dir(out)
    with sweep_lock(out, sweep.name):  # one driver per sweep folder, before anything is read, deleted or started
        check_encoders(sweep.fixed, sweep.search, sweep.source)  # seconds (transformers): after the lock's answer
        return start(sweep, out, args)


def start(sweep: Sweep, out: Path, args) -> int:
    """Check for an earlier sweep and the data, clear the folder for --fresh, run; -> the exit code."""
    storage, name = tune_location(sweep, out)
    earlier = exists(f"{storage}/{name}")
    if args.resume and not earlier:
        raise InputError(f"{storage}/{name}: no sweep to resume there")
    if args.resume:
        check_resumable(sweep, out, storage, name)
    if not args.resume and earlier and not (args.fresh or args.smoke_test):  # smoke runs are disposable
        raise InputError(f"{out}: holds an earlier sweep; --resume to continue it or --fresh to replace it")
    splits = load_splits(sweep.data)  # bad data stops here, before anything is deleted or started
    check_token_inputs(sweep, splits["train"])
    if sweep.data.limit:
        whole = load_splits(sweep.data.model_copy(update={"limit": None, "sample": None}), list(sweep.data.limit))
        for line in limit_notices(sweep.data, splits, whole):
            print(line)
    if not args.resume and earlier:
        remove(f"{storage}/{name}")
        for path in out.iterdir():  # all but our lock
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.name != LOCK_FILE:
                path.unlink()
    return run_sweep(sweep, splits, out, args)


def check_token_inputs(sweep: Sweep, train) -> None:
    """A fixed token_input file (the beta loss's targets) must hold the train split's sentences, checked now
    rather than inside every trial."""
    from zs_core.train import beta_targets

    beta_targets(build_config(sweep.fixed, sweep.source), train)


def check_resumable(sweep: Sweep, out: Path, storage: str, name: str) -> None:
    """--resume needs Tune's saved experiment state and the same sweep as the one that started (sweep.yaml)."""
    from sweep.yamlfile import read_yaml

    if not has_tune_state(f"{storage}/{name}"):
        raise InputError(f"{storage}/{name}: holds no saved Tune state to resume (the earlier run stopped before "
                         f"its trials started); run the command again without --resume")
    saved = out / "sweep.yaml"
    if saved.is_file():
        before = read_yaml(saved)
        now = yaml.safe_load(yaml.safe_dump(sweep.resolved(), sort_keys=False))  # the same types as the file
        for part in ("data", "fixed", "search", "tune"):
            if isinstance(before, dict) and before.get(part) != now.get(part):
                raise InputError(f"{saved}: the sweep to resume had other {part} settings; --resume continues "
                                 f"that same sweep (its {part}: {shown(before.get(part))})")


def run_sweep(sweep: Sweep, splits, out: Path, args) -> int:
    # Tune snapshots its state whenever a trial saves its best checkpoint (what --resume needs); not a warning
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray
    from ray import tune

    from sweep.leaderboard import FINISHED
    from sweep.progress import TrialProgress, quiet_terminal, start_board
    from sweep.results import leaderboard_rows, select_kept, write_results
    from sweep.trial import train_trial
    from zs_core.evaluation import labelled, random_baseline

    quiet_terminal()
    url = start_ray(args.address, args.dashboard_host, args.num_cpus)
    print(start_line(url, out), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume:  # a resumed sweep is the one sweep.yaml describes (check_resumable)
        write_text_atomic(out / "sweep.yaml",
                          f"# {args.command}\n" + yaml.safe_dump(sweep.resolved(), sort_keys=False))
    resources = fit_resources(sweep.tune.resources_per_trial, sweep.tune.max_concurrent, quiet=args.quiet)
    board = None if args.quiet else start_board()
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, splits=splits, fixed=sweep.fixed, seeds=sweep.tune.seeds,
                             metric=sweep.tune.metric, mode=sweep.tune.mode, rules=sweep.tune.rules, board=board),
        resources)
    storage, name = tune_location(sweep, out)
    callbacks, where = tracker_callbacks(sweep.tune.loggers, sweep.name, out, f"{storage}/{name}")
    if not args.quiet:
        callbacks.append(TrialProgress(sweep.tune.metric, sweep.tune.mode))
        print("\n".join(where), flush=True)
    if args.resume:
        tuner = tune.Tuner.restore(f"{storage}/{name}", trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
    else:
        tuner = make_tuner(sweep, trainable, storage, name, callbacks)
    with graceful_stop() as stop:
        try:
            grid = tuner.fit()
        except KeyboardInterrupt:  # SIGTERM, a second signal, or one before Tune's loop began
            raise stopped_at_once(stop, args.resume_command) from None
        except RuntimeError as err:  # Tune's loop ended by Ray (a worker killed for low memory)
            lost = lost_to_memory(err, args.resume_command)
            if lost is None:
                raise
            ray.shutdown()
            raise lost from None
    if stop.signum == signal.SIGINT:
        ray.shutdown()  # Ray's forwarded log lines come before the one that says how to go on (SIGTERM to the
        # process group stops Ray's own processes too: then Ray is not waited for, see common.cli)
    raise_if_interrupted(stop, args.resume_command)
    try:
        rows = leaderboard_rows(grid, sweep)
        kept = select_kept(rows, sweep.tune)
        if labelled(splits["test"]):  # a test file without labels: no test/* columns
            evaluate_kept(kept, splits, resources)
        cfg = build_config(sweep.fixed, sweep.source)
        rows.append({"trial_id": "random", "method": RANDOM, "status": "TERMINATED",
                     **random_baseline(splits, cfg.eval.importance_threshold, cfg.eval.top_count)})
        write_results(rows, sweep, out, args.command, args.quiet)
    except KeyboardInterrupt:  # every trial had finished: --resume writes the results again
        raise Interrupted(signal.SIGINT, f"stopped while writing the results; write them with: "
                          f"{args.resume_command}") from None
    ray.shutdown()  # with --address this only disconnects
    failed = [r for r in rows if r.get("status") not in FINISHED]
    if len(failed) == len(rows) - 1:  # every trial (the random row is not one)
        print(f"error: every trial failed; the first: {failed[0].get('error') or failed[0]['status']}",
              file=sys.stderr)
        return 1
    return 0


def make_tuner(sweep: Sweep, trainable, storage: str, name: str, callbacks: list = ()):
    """The Tuner; Tune prints nothing itself (verbose 0): ``callbacks`` (sweep.progress) say what happens."""
    import functools

    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, Repeater

    from sweep.statuses import TrialStatuses
    from sweep.trial import BEST_AT, SEED_INDEX

    t = sweep.tune
    space = to_tune_space(sweep.search, grid=t.searcher == "grid")
    if t.searcher == "grid" or not space:  # a grid, or one fixed configuration: every point once per seed
        search_alg = BasicVariantGenerator()
        space["seed"] = tune.grid_search(list(t.seeds))
        num_samples = 1
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no study banner
        sampler = optuna.samplers.TPESampler(seed=t.seeds[0]) if t.searcher == "optuna" else \
            optuna.samplers.RandomSampler(seed=t.seeds[0])
        search_alg = Repeater(OptunaSearch(sampler=sampler, metric=t.metric, mode=t.mode), repeat=len(t.seeds))
        space[SEED_INDEX] = 0  # Repeater overwrites it with 0..len(seeds)-1
        num_samples = t.num_samples * len(t.seeds)
    epochs = max(sweep.max_epochs(), 1)
    scheduler = FIFOScheduler() if t.scheduler == "fifo" else ASHAScheduler(
        time_attr="epoch", max_t=epochs, grace_period=min(t.grace_period, epochs),
        reduction_factor=t.reduction_factor)
    return tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=t.metric, mode=t.mode, search_alg=search_alg, scheduler=scheduler,
                                    num_samples=num_samples, max_concurrent_trials=t.max_concurrent or None,
                                    reuse_actors=t.reuse_actors,  # torch is imported once per process
                                    trial_dirname_creator=functools.partial(trial_dirname, seeds=t.seeds)),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, verbose=0,
            failure_config=tune.FailureConfig(max_failures=1),  # a trial that raises is retried once
            callbacks=[*callbacks, TrialStatuses()],  # TrialStatuses: what an interruption left unfinished
            # the best checkpoint and (Tune always keeps it) the latest, which a retry or --resume goes on from
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=BEST_AT,
                                                    checkpoint_score_order="max")),
    )


def evaluate_kept(kept: list[dict], splits, resources: dict) -> None:
    """Score the kept checkpoints on test: one GPU task each, or here in the driver on a CPU cluster."""
    import ray

    from sweep.trial import evaluate_on_test

    if not kept:
        return
    jobs = [(row.checkpoint, row.get(on_dev(TOK_CAL_THRESHOLD))) for row in kept]
    if resources.get("gpu"):
        task = ray.remote(num_cpus=resources.get("cpu", 1), num_gpus=resources["gpu"])(evaluate_on_test)
        splits_ref = ray.put(splits)
        results = ray.get([task.remote(checkpoint, splits_ref, threshold) for checkpoint, threshold in jobs])
    else:  # the driver has torch loaded already; a fresh worker would spend seconds importing it
        results = [evaluate_on_test(checkpoint, splits, threshold) for checkpoint, threshold in jobs]
    for row, metrics in zip(kept, results):
        row.update(metrics)


if __name__ == "__main__":
    sys.exit(main())
