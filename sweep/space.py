"""A sweep YAML -> a checked Sweep: data, fixed config, search space (by allow-list), Tune settings."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from zs_core.config import KEYS, build_config, read_seed_conf
from zs_core.data import DataSpec, data_spec_from_dict
from zs_core.errors import InputError

TOP_KEYS = ("name", "data", "fixed", "search", "tune")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint", "grid")
SEARCHERS = ("optuna", "random", "grid")
SCHEDULERS = ("asha", "fifo")


@dataclass(frozen=True)
class TuneSettings:
    metric: str = "dev/sent_f1"         # reported once per epoch; model selection by this
    mode: str = "max"                   # max or min
    num_samples: int = 1                # sampled configurations (each run once per seed)
    searcher: str = "optuna"            # optuna (TPE), random, grid
    scheduler: str = "asha"             # asha (early stopping), fifo (none)
    grace_period: int = 1               # ASHA: epochs before a trial may be stopped
    reduction_factor: int = 3           # ASHA
    max_concurrent: int = 0             # 0 = as many as resources allow
    seeds: tuple[int, ...] = (15,)      # every sampled configuration runs once per seed
    resources_per_trial: dict = field(default_factory=lambda: {"gpu": 1})  # gpu, cpu
    keep_top_k: int = 3                 # trials that keep their best checkpoint and are scored on test
    storage_path: str | None = None     # Tune's result tree: a shared folder or a pyarrow URI (default OUT)


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    data: DataSpec
    fixed: dict[str, Any]
    search: dict[str, dict[str, Any]]
    tune: TuneSettings

    def resolved(self) -> dict[str, Any]:
        """The whole sweep as plain data, saved beside the results."""
        tune = {f.name: getattr(self.tune, f.name) for f in fields(self.tune)}
        tune["seeds"] = list(tune["seeds"])
        data = {k: v for k, v in vars(self.data).items() if v not in (None, ())}
        if "positive_labels" in data:
            data["positive_labels"] = list(data["positive_labels"])
        return {"name": self.name, "data": data, "fixed": dict(self.fixed), "search": copy.deepcopy(self.search),
                "tune": tune}


def load_sweep(path: str | Path, overrides: list[str] = ()) -> Sweep:
    """Read a sweep YAML (or a seed .conf, one fixed configuration) and apply ``key=value`` overrides."""
    path = Path(path)
    if path.suffix == ".conf":
        raw = read_seed_conf(path)
        dataset = raw.get("dataset", "wnut16")
        doc = {"name": raw.get("experiment_name", path.stem), "data": {"dataset": dataset},
               "fixed": {k: v for k, v in raw.items() if k in KEYS}, "tune": {"num_samples": 1}}
        build_config(raw, str(path), allow_seed_keys=True)  # the seed's own keys are checked, then dropped
    else:
        doc = _read_yaml(path)
    source = str(path)
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown top-level key {unknown[0]!r}; allowed: {', '.join(TOP_KEYS)}")
    fixed = dict(doc.get("fixed") or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise InputError(f"override {item!r}: expected key=value with a config key, e.g. learning_rate=3e-5")
        fixed[key] = yaml.safe_load(value)
    build_config(fixed, f"{source}: fixed")
    search = doc.get("search") or {}
    if not isinstance(search, dict):
        raise InputError(f"{source}: search must be a mapping of config key -> {{distribution: args}}")
    for key, spec in search.items():
        check_distribution(key, spec, source)
    tune = _tune_settings(doc.get("tune") or {}, source)
    if not search and not fixed:
        raise InputError(f"{source}: empty search and no fixed config: nothing to run")
    if tune.searcher == "grid" and any(next(iter(s)) not in ("grid", "choice") for s in search.values()):
        raise InputError(f"{source}: tune.searcher grid needs every search key to be grid or choice")
    if tune.searcher != "grid" and any(next(iter(s)) == "grid" for s in search.values()):
        raise InputError(f"{source}: a grid distribution needs tune.searcher: grid")
    data = data_spec_from_dict(doc.get("data") or {"dataset": "wnut16"}, f"{source}: data")
    name = str(doc.get("name") or path.stem)
    return Sweep(name=name, source=source, data=data, fixed=fixed, search=search, tune=tune)


def check_distribution(key: str, spec: Any, source: str) -> None:
    where = f"{source}: search.{key}"
    if key not in KEYS:
        raise InputError(f"{where}: unknown config key; expected one of: {', '.join(sorted(KEYS))}")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise InputError(f"{where}: expected one distribution, e.g. {{loguniform: [1e-5, 1e-4]}}")
    (dist, args), = spec.items()
    if dist not in DISTRIBUTIONS:
        raise InputError(f"{where}: unknown distribution {dist!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    if not isinstance(args, list) or not args:
        raise InputError(f"{where}: {dist} expects a list, got {args!r}")
    if dist in ("choice", "grid"):
        for value in args:
            build_config({key: value}, where)
        return
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise InputError(f"{where}: {dist} expects [low, high] numbers, got {args!r}")
    low, high = args
    if low >= high:
        raise InputError(f"{where}: low {low} must be below high {high}")
    if dist == "loguniform" and low <= 0:
        raise InputError(f"{where}: loguniform needs low > 0, got {low}")
    if dist == "randint" and not (isinstance(low, int) and isinstance(high, int)):
        raise InputError(f"{where}: randint expects whole numbers, got {args!r}")
    build_config({key: low}, where)


def to_tune_space(search: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Checked search spec -> Tune domains. The only place that maps names to Tune functions."""
    from ray import tune

    makers = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint,
              "choice": tune.choice, "grid": tune.grid_search}
    space = {}
    for key, spec in search.items():
        (dist, args), = spec.items()
        space[key] = makers[dist](args) if dist in ("choice", "grid") else makers[dist](*args)
    return space


def smoke(sweep: Sweep) -> Sweep:
    """--smoke-test: tiny-random encoder, 2 trials (1 configuration x 2 seeds), 1 epoch, 32 sentences, CPU."""
    fixed = {**sweep.fixed, "model_name": "tiny-random", "num_train_epochs": 1}
    data = replace(sweep.data, limit={"train": 32, "dev": 32, "test": 32})
    seeds = sweep.tune.seeds[:2] if len(sweep.tune.seeds) > 1 else (sweep.tune.seeds[0], sweep.tune.seeds[0] + 1)
    tune = replace(sweep.tune, num_samples=1, seeds=seeds, resources_per_trial={"cpu": 1},
                   keep_top_k=min(sweep.tune.keep_top_k, 2), searcher="random" if sweep.search else sweep.tune.searcher)
    return replace(sweep, name=f"{sweep.name}-smoke", fixed=fixed, data=data, tune=tune)


def _tune_settings(raw: dict, source: str) -> TuneSettings:
    if not isinstance(raw, dict):
        raise InputError(f"{source}: tune must be a mapping")
    allowed = {f.name: f for f in fields(TuneSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in allowed:
            raise InputError(f"{source}: unknown key tune.{key}; allowed: {', '.join(allowed)}")
        values[key] = value
    settings = TuneSettings(**values)
    checks = [
        (settings.mode in ("max", "min"), "mode", "max or min"),
        (settings.searcher in SEARCHERS, "searcher", ", ".join(SEARCHERS)),
        (settings.scheduler in SCHEDULERS, "scheduler", ", ".join(SCHEDULERS)),
        (isinstance(settings.metric, str) and "/" in settings.metric, "metric", "a reported metric, e.g. dev/sent_f1"),
        (_count(settings.num_samples, 1), "num_samples", "a whole number >= 1"),
        (_count(settings.grace_period, 1), "grace_period", "a whole number >= 1"),
        (_count(settings.reduction_factor, 2), "reduction_factor", "a whole number >= 2"),
        (_count(settings.max_concurrent, 0), "max_concurrent", "a whole number >= 0"),
        (_count(settings.keep_top_k, 0), "keep_top_k", "a whole number >= 0"),
        (isinstance(settings.seeds, (list, tuple)) and settings.seeds and all(_count(s, 0) for s in settings.seeds),
         "seeds", "a non-empty list of whole numbers"),
        (isinstance(settings.resources_per_trial, dict) and set(settings.resources_per_trial) <= {"gpu", "cpu"}
         and all(isinstance(v, (int, float)) and v >= 0 for v in settings.resources_per_trial.values()),
         "resources_per_trial", "a mapping with gpu and/or cpu counts"),
    ]
    for ok, key, expected in checks:
        if not ok:
            raise InputError(f"{source}: tune.{key} must be {expected}, got {getattr(settings, key)!r}")
    return replace(settings, seeds=tuple(settings.seeds))


def _count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _read_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', None) or 'parse error'})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    return doc
