"""What every command line shares: exit-2 error handling, data arguments, Ray start-up, provenance."""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from zs_core.config import DATASETS, SPLITS, DataConfig
from zs_core.errors import InputError, error_line
from zs_core.layouts import SEED_DATASET_NAMES
from zs_core.protocol import PROTOCOL_VERSION
from zs_core.provenance import data_provenance

FROM_SHELL = False  # set by the zs-sweep console command (sweep.cli), whose commands get their argv as a list
EXIT_BAD_INPUT = 2
# how a command is named in its usage line: "python -m sweep.run", or "zs-sweep run" when started through
# the zs-sweep console script (sweep.cli sets it)
INVOKED_AS = "python -m sweep.{}"
DATA_ROOT_ENV = "ZS_DATA_ROOT"  # where the seed's data/ folder is, for seed datasets named without a root
PACKAGES = ("zs-sweep", "torch", "transformers", "ray", "optuna", "scikit-learn", "pyarrow")


def cli(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a command's main: an InputError becomes one line on stderr and exit code 2, and so does an OSError
    from the machine (a disk full, a folder that cannot be written: atomic writes leave no partial file);
    Ctrl-C and SIGTERM end it with one line and exit code 130 or 143 (sweep.interrupt)."""
    from sweep.interrupt import EXIT_CODES, Interrupted

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        old = signal.signal(signal.SIGTERM, _terminated)
        try:
            quiet_libraries()
            return main(argv)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except Interrupted as stop:
            print(f"interrupted: {stop}", file=sys.stderr)
            if argv is None or FROM_SHELL:  # a command line, not a call: end now, as Ray's exit hook would wait for
                sys.stdout.flush()  # a GCS that a SIGTERM to the process group has stopped
                sys.stderr.flush()
                os._exit(stop.code)
            return stop.code
        except KeyboardInterrupt:
            print("interrupted: stopped by Ctrl-C", file=sys.stderr)
            return EXIT_CODES[signal.SIGINT]
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            print(f"error: {where}{err.strerror or error_line(err)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        finally:
            signal.signal(signal.SIGTERM, old)

    return wrapped


def _terminated(signum, frame) -> None:
    from sweep.interrupt import Interrupted

    raise Interrupted(signum, "stopped by SIGTERM")


def prog(command: str) -> str:
    """The usage line's name of ``command`` (run, heads, predict, evaluate, report)."""
    return INVOKED_AS.format(command)


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error with exit code 2 in one line (argparse's own code is 2 too), and
    takes no abbreviated flag (``--data`` is never read as ``--data-root``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


class _NoUnstartedTrialWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to fetch metrics")


def quiet_libraries() -> None:
    """No per-file progress bars or load reports from transformers in our output: by its environment variables
    (read when it is imported, here or in a Ray worker, so nothing is imported for it), and directly when it
    is imported already; no "Checkpoint successfully created" line per report from a Tune trial, and no "Failed to
    fetch metrics" warning for a trial that had not started when the sweep was stopped (its own line says so)."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    analysis = logging.getLogger("ray.tune.analysis.experiment_analysis")
    if not any(isinstance(f, _NoUnstartedTrialWarning) for f in analysis.filters):
        analysis.addFilter(_NoUnstartedTrialWarning())
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=None, help="a named dataset (default wnut16)")
    group.add_argument("--data-dir", default=None, help="a folder with train.tsv, dev.tsv, test.tsv")
    group.add_argument("--positive-labels", nargs="+", default=None, help="labels that count as positive")
    add_seed_data_args(group)
    group.add_argument("--limit", type=int, default=None, help="first N sentences of every split")
    group.add_argument("--sample", type=int, default=None,
                       help="a fixed random N sentences of every split (the same in every command), in file order")


def add_seed_data_args(group) -> None:
    group.add_argument("--seed-dataset", default=None, choices=SEED_DATASET_NAMES, metavar="NAME",
                       help=f"one of the seed's datasets below --data-root: {', '.join(SEED_DATASET_NAMES)}")
    group.add_argument("--data-root", default=None,
                       help=f"the folder that holds the seed's data/ folder (default ${DATA_ROOT_ENV})")


def with_data_root(block: dict, data_root: str | None) -> dict:
    """A data block naming a seed dataset, its root filled from --data-root or $ZS_DATA_ROOT when absent."""
    if not isinstance(block, dict) or block.get("seed_dataset") is None or block.get("root") is not None:
        return block
    root = data_root or os.environ.get(DATA_ROOT_ENV)
    return {**block, "root": root} if root else block


def check_data_args(args: argparse.Namespace, root_alone: bool = False) -> None:
    """The data flags' own rules, the same in every command (``root_alone``: --data-root may name the root of
    a seed dataset that the sweep's YAML or .conf names)."""
    given = [flag for flag, value in (("--data", args.data), ("--data-dir", args.data_dir),
                                      ("--seed-dataset", args.seed_dataset)) if value]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)}: give one of them")
    if args.data_root and not args.seed_dataset and not root_alone:
        raise InputError("--data-root goes with --seed-dataset (or a .conf's dataset = ...)")
    if args.data_dir and not args.positive_labels:
        raise InputError("--data-dir needs --positive-labels")
    if args.positive_labels and not args.data_dir:
        raise InputError("--positive-labels goes with --data-dir")
    for flag, value in (("--limit", args.limit), ("--sample", args.sample)):
        if value is not None and value < 1:
            raise InputError(f"{flag} {value}: expected a positive integer")
    if args.data and args.data not in DATASETS:
        seed = f"; the seed's {args.data} is --seed-dataset {args.data}" if args.data in SEED_DATASET_NAMES else ""
        raise InputError(f"--data {args.data}: unknown dataset; known: {', '.join(DATASETS)} (or --data-dir DIR){seed}")


def data_overrides(args: argparse.Namespace) -> list[str]:
    """sweep.run's data flags as ``data.KEY=VALUE`` overrides of the sweep's data block (values as JSON, which
    YAML reads back as they were)."""
    check_data_args(args, root_alone=True)
    out = []
    if args.data:
        out.append(f"data.dataset={json.dumps(args.data)}")
    if args.data_dir:
        out += [f"data.dir={json.dumps(args.data_dir)}",
                f"data.positive_labels={json.dumps(list(args.positive_labels))}"]
    if args.seed_dataset:
        out.append(f"data.seed_dataset={json.dumps(args.seed_dataset)}")
    for name in ("limit", "sample"):
        if getattr(args, name) is not None:
            out.append(f"data.{name}={json.dumps({s: getattr(args, name) for s in SPLITS})}")
    return out


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    check_data_args(args)
    limit, sample = ({s: n for s in SPLITS} if n is not None else None
                     for n in (args.limit, args.sample))
    if args.data_dir:
        return DataConfig(dir=args.data_dir, positive_labels=tuple(args.positive_labels), limit=limit,
                          sample=sample)
    if args.seed_dataset:
        block = with_data_root({"seed_dataset": args.seed_dataset}, args.data_root)
        if "root" not in block:
            raise InputError(f"--seed-dataset {args.seed_dataset}: give --data-root PATH (the folder that holds "
                             f"the seed's data/ folder) or set {DATA_ROOT_ENV}")
        return DataConfig(**block, limit=limit, sample=sample)
    return DataConfig(dataset=args.data or "wnut16", limit=limit, sample=sample)


def check_output_dir(path: str | Path, flag: str = "--output") -> Path:
    """An output folder (created later if absent): a file in its place or above it is bad input."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: is a file, expected a folder")
    _check_above(path, flag)
    return path


def check_output_file(path: str | Path, flag: str, what: str) -> Path:
    """A file to write (``what``, e.g. "the TSV file"), checked before any work: not a folder, and the nearest
    existing folder above it is a folder this user can write."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder, expected {what} to write")
    _check_above(path, flag)
    return path


def _check_above(path: Path, flag: str) -> None:
    """The nearest existing path above ``path`` must be a folder this user can write (created folders go there)."""
    above = next((p for p in path.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InputError(f"{flag} {path}: {above} is a file, so nothing can be written below it")
    if above is not None and not os.access(above, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: {above} is not writable by this user")


def provenance(command: str, spec: DataConfig | None = None,
               splits: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """Where a result row came from, the same in every output: the command line, created_at, the git sha and
    whether the tree had uncommitted changes, the token-score protocol's version, package versions, and (with
    ``spec``) the data of ``splits``: dataset or folder, positive labels, limit, sample and each split file's sha256
    (short)."""
    sha, dirty = git_state()
    out = {"command": command, "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "git_sha": sha, "git_dirty": dirty, "protocol_version": PROTOCOL_VERSION}
    for name in PACKAGES:
        try:
            out[f"version_{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[f"version_{name}"] = ""
    return {**out, **(data_provenance(spec, splits) if spec is not None else {})}


def command_line(module: str, argv: list[str] | None) -> str:
    """``python -m MODULE ARGS`` as typed (argv None: this process's own arguments)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, str]:
    """(HEAD's sha, "true"/"false": tracked files changed since it); ("", "") outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True,
                              timeout=5).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        return (sha, str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower()) if sha else ("", "")
    except (OSError, subprocess.SubprocessError):
        return "", ""


def start_ray(address: str | None, dashboard_host: str = "127.0.0.1", num_cpus: int | None = None) -> str:
    """Start a local Ray of its own with the dashboard, or join ``address`` (or $RAY_ADDRESS); returns the
    dashboard URL. Never joins another Ray that merely runs on this machine (ray.init's default would).
    A local Ray keeps token authentication on, as Ray 2.60 does by default, without Ray's notice that it is
    on (start_line says where the token is); Ray's INFO lines (the dashboard URL a second time) are not printed."""
    import logging

    import ray

    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        return getattr(ctx, "dashboard_url", "") or ""
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    kwargs = dict(include_dashboard=True, dashboard_host=dashboard_host, log_to_driver=True,
                  logging_level=logging.WARNING)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        context = ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING)
    else:
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        context = ray.init(address="local", num_cpus=num_cpus, **kwargs)
    url = context.dashboard_url or ""
    return f"http://{url}" if url and not url.startswith("http") else url


def start_line(url: str, out: Path | str) -> str:
    """The line a command prints once Ray runs: the dashboard (and where its sign-in token comes from) and the
    output folder."""
    token = " (its token: ray get-auth-token)" if url and os.environ.get("RAY_AUTH_MODE", "").lower() == "token" \
        else ""
    return f"Ray dashboard: {url or '(not available)'}{token}; output: {out}"
