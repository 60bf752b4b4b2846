"""A sweep YAML -> a checked Sweep: data, fixed config, search space (by allow-list), Tune settings."""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from sweep.common import with_data_root
from sweep.overrides import apply_overrides, blame
from sweep.seed_conf import sweep_doc
from sweep.trackers import TRACKERS
from sweep.yamlfile import read_yaml
from zs_core.config import (
    DATA_SOURCE,
    KEYS,
    DataConfig,
    Stage,
    build_config,
    data_config,
    flat_kind,
    validated,
)
from zs_core.errors import InputError, shown
from zs_core.protocol import DEFAULT_METRIC, RULE_NAMES, model_method, selectable

TOP_KEYS = ("name", "data", "fixed", "search", "tune")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint", "grid")
# Which key types each distribution may sample (randint's high is exclusive, as in Tune).
DECIDE_METHOD = ("is_seq_class", "soft_attention", "zero_shot_head")  # the keys behind a trial's method
NUMERIC_FOR = {"uniform": ("float",), "loguniform": ("float",), "randint": ("int", "float")}


class TuneConfig(Stage):
    """A sweep's Tune settings (the tune: block); used by sweep.run only."""
    metric: str = DEFAULT_METRIC          # reported at every dev evaluation; model selection by this
    mode: Literal["max", "min"] = "max"
    num_samples: PositiveInt = 1          # sampled configurations (each run once per seed)
    searcher: Literal["optuna", "random", "grid"] = "optuna"  # optuna = TPE
    scheduler: Literal["asha", "fifo"] = "asha"  # asha: early stopping by epoch; fifo: none
    grace_period: PositiveInt = 1         # ASHA: epochs before a trial may be stopped
    reduction_factor: int = Field(3, ge=2)  # ASHA
    max_concurrent: NonNegativeInt = 0    # 0 = as many as resources allow
    # every configuration runs once per seed; a seed is what numpy and torch take: 0 <= seed < 2**32
    seeds: tuple[Annotated[int, Field(ge=0, lt=2**32)], ...] = Field((15,), min_length=1)
    resources_per_trial: dict[Literal["gpu", "cpu"], float] = {"gpu": 1}
    keep_top_k: NonNegativeInt = 3        # trials that keep their best checkpoint and are scored on test
    storage_path: str | None = Field(None, min_length=1)  # Tune's result tree: a shared folder or a URI
    reuse_actors: bool = True             # a trial process runs trial after trial (false: a fresh one each)
    # the selection rules (zs_core.protocol.RULES) whose picks each trial also scores on test: rules.parquet;
    # [] = none (only the kept trials are scored on test, at tune.metric's pick)
    rules: tuple[Literal[RULE_NAMES], ...] = RULE_NAMES  # type: ignore[valid-type]
    # experiment trackers, each an optional extra (sweep.trackers): tensorboard, mlflow, wandb; [] = none
    loggers: tuple[Literal[TRACKERS], ...] = ("tensorboard",)  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _seeds_as_tuple(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {**values, **{k: tuple(values[k]) for k in ("seeds", "rules", "loggers")
                                 if isinstance(values.get(k), list)}}
        return values

    @model_validator(mode="after")
    def _distinct_seeds_and_resources(self) -> TuneConfig:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("tune.seeds: expected distinct seeds")
        if any(v < 0 for v in self.resources_per_trial.values()):
            raise ValueError("tune.resources_per_trial: counts must be 0 or more")
        return self


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    data: DataConfig  # the data block's source; how words are encoded comes from fixed, per trial
    fixed: dict[str, Any]
    search: dict[str, dict[str, Any]]
    tune: TuneConfig

    def resolved(self) -> dict[str, Any]:
        """The whole sweep as plain data, saved beside the results."""
        tune = self.tune.model_dump(mode="json")
        data = {k: v for k, v in self.data.model_dump(mode="json", include=set(DATA_SOURCE)).items()
                if v not in (None, [])}
        return {"name": self.name, "data": data, "fixed": dict(self.fixed), "search": copy.deepcopy(self.search),
                "tune": tune}

    def max_epochs(self) -> int:
        """The most epochs any trial can run: num_train_epochs may itself be searched, and a searched
        is_seq_class false brings the ceiling's default epochs."""
        spec = self.search.get("num_train_epochs")
        if not spec:
            return max(cfg.train.num_train_epochs for cfg in method_configs(self))
        (dist, args), = spec.items()
        return max(args) if dist in ("choice", "grid") else int(args[1]) - (dist == "randint")


def load_sweep(path: str | Path, overrides: list[str] = (), data_root: str | None = None) -> Sweep:
    """Read a sweep YAML (or a seed .conf, one fixed configuration) and apply ``key=value`` overrides.

    An override is ``key=value`` for a config key (it becomes fixed, and leaves the search if searched),
    ``tune.KEY=value``, ``data.KEY=value`` or ``name=value``; values are read as YAML. A seed dataset
    without ``data.root`` is looked up below ``data_root`` (--data-root) or $ZS_DATA_ROOT.
    """
    path = Path(path)
    doc = sweep_doc(path) if path.suffix == ".conf" else _read_yaml(path)
    source = str(path)
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown top-level key {shown(unknown[0])}; allowed: {', '.join(TOP_KEYS)}")
    for key in ("data", "fixed", "search", "tune"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise InputError(f"{source}: {key} must be a mapping, got {shown(doc[key])}")
    doc = {**doc, "fixed": dict(doc.get("fixed") or {}), "search": dict(doc.get("search") or {})}
    overridden = apply_overrides(doc, overrides, source)  # a malformed override's own line names it
    try:
        return _sweep(overridden, path, data_root)
    except InputError as err:
        raise blame(err, doc, overrides, lambda d: _sweep(d, path, data_root), str(path)) from None


def _sweep(doc: dict, path: Path, data_root: str | None) -> Sweep:
    source = str(path)
    fixed, search = doc["fixed"], doc["search"]
    build_config(fixed, f"{source}: fixed")
    if "seed" in fixed or "seed" in search:
        raise InputError(f"{source}: seed: give the seeds as tune.seeds, e.g. tune: {{seeds: [1, 2, 3]}}")
    for key, spec in search.items():
        check_distribution(key, spec, source, fixed)
        if key in fixed:
            raise InputError(f"{source}: search.{key}: also set in fixed; give it in one place")
    tune = validated(TuneConfig, doc.get("tune") or {}, source, prefix="tune.")
    if not search and not fixed:
        raise InputError(f"{source}: empty search and no fixed config: nothing to run; "
                         f"give fixed: {{...}} and/or search: {{...}}")
    kinds = {next(iter(s)) for s in search.values()}
    if tune.searcher == "grid" and kinds - {"grid", "choice"}:
        raise InputError(f"{source}: tune.searcher grid needs every search key to be grid or choice, "
                         f"got {', '.join(sorted(kinds - {'grid', 'choice'}))}")
    if tune.searcher != "grid" and "grid" in kinds:
        raise InputError(f"{source}: a grid distribution needs tune.searcher: grid")
    data = data_config(with_data_root(doc.get("data") or {}, data_root), source)
    name = str(doc.get("name") or path.stem)
    if not name or "/" in name or name.startswith(".") or len(name) > 100 or not name.isprintable():
        raise InputError(f"{source}: name must be a plain folder name (no / or leading dot, printable, at most "
                         f"100 characters), got {shown(name)}")
    sweep = Sweep(name=name, source=source, data=data, fixed=fixed, search=search, tune=tune)
    _check_metric(sweep)
    return sweep


def check_distribution(key: str, spec: Any, source: str, fixed: dict[str, Any] | None = None) -> None:
    """One search key's distribution, by the allow-list; each value it can take must make a valid config with
    the sweep's ``fixed`` settings."""
    fixed = fixed or {}
    where = f"{source}: search.{key}"
    if key not in KEYS:
        raise InputError(f"{where}: unknown config key; expected one of: {', '.join(sorted(KEYS))}")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise InputError(f"{where}: expected one distribution ({', '.join(DISTRIBUTIONS)}), "
                         f"e.g. {{loguniform: [1.0e-5, 1.0e-4]}}, got {shown(spec)}")
    (dist, args), = spec.items()
    if dist not in DISTRIBUTIONS:
        raise InputError(f"{where}: unknown distribution {shown(dist)}; allowed: {', '.join(DISTRIBUTIONS)}")
    if not isinstance(args, list) or not args:
        raise InputError(f"{where}: {dist} expects a non-empty list, got {shown(args)}")
    if dist in ("choice", "grid"):
        for value in args:
            build_config({**fixed, key: value}, where)
        return
    kind = flat_kind(key)
    if kind not in NUMERIC_FOR[dist]:
        allowed = [d for d, kinds in NUMERIC_FOR.items() if kind in kinds] + ["choice", "grid"]
        raise InputError(f"{where}: {dist} cannot sample a {kind} key; allowed: {', '.join(allowed)}")
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
                                 for a in args):
        raise InputError(f"{where}: {dist} expects [low, high] finite numbers, got {shown(args)}")
    low, high = args
    if low >= high:
        raise InputError(f"{where}: low {low} must be below high {high}")
    if dist == "loguniform" and low <= 0:
        raise InputError(f"{where}: loguniform needs low > 0, got {low}")
    if dist == "randint" and not (isinstance(low, int) and isinstance(high, int)):
        raise InputError(f"{where}: randint expects whole numbers [low, high), got {shown(args)}")
    build_config({**fixed, key: low}, where)


def to_tune_space(search: dict[str, dict[str, Any]], grid: bool = False) -> dict[str, Any]:
    """Checked search spec -> Tune domains. The only place that maps names to Tune functions.

    ``grid=True`` (searcher grid): a choice is enumerated like a grid, every value once.
    """
    from ray import tune

    makers = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint,
              "choice": tune.grid_search if grid else tune.choice, "grid": tune.grid_search}
    space = {}
    for key, spec in search.items():
        (dist, args), = spec.items()
        space[key] = makers[dist](list(args)) if dist in ("choice", "grid") else makers[dist](*args)
    return space


def reported_metrics(sweep: Sweep) -> list[str]:
    """The metrics every trial of this sweep reports at each dev evaluation: zs_core.protocol.selectable over
    the methods its configurations can have (every combination of the searched keys that decide a method)."""
    return selectable(sorted({model_method(cfg.model) for cfg in method_configs(sweep)}))


def method_configs(sweep: Sweep) -> list:
    """The config of every combination of the searched keys that decide a trial's method (the others fixed)."""
    searched = {k: next(iter(spec.values())) for k, spec in sweep.search.items() if k in DECIDE_METHOD}
    return [build_config({**sweep.fixed, **dict(zip(searched, combo))}, sweep.source)
            for combo in itertools.product(*searched.values())]


def smoke(sweep: Sweep) -> Sweep:
    """--smoke-test: tiny-random, 2 trials (1 configuration x 2 seeds), 1 epoch, 32 sentences, 1 CPU each."""
    fixed = {**sweep.fixed, "model_name": "tiny-random", "num_train_epochs": 1}
    search = {k: v for k, v in sweep.search.items() if k not in fixed}
    if sweep.tune.searcher == "grid":  # one grid point: the first value of every list
        search = {k: {next(iter(v)): [next(iter(v.values()))[0]]} for k, v in search.items()}
    data = sweep.data.model_copy(update={"limit": {"train": 32, "dev": 32, "test": 32}})
    seeds = sweep.tune.seeds[:2] if len(sweep.tune.seeds) > 1 else (sweep.tune.seeds[0], sweep.tune.seeds[0] + 1)
    gpu = sweep.tune.resources_per_trial.get("gpu", 0)
    tune = sweep.tune.model_copy(update={
        "num_samples": 1, "seeds": seeds, "resources_per_trial": {"cpu": 1, "gpu": gpu}, "storage_path": None,
        "keep_top_k": min(sweep.tune.keep_top_k, 2), "searcher": "grid" if sweep.tune.searcher == "grid" else "random"})
    return replace(sweep, name=f"{sweep.name}-smoke", fixed=fixed, search=search, data=data, tune=tune)


def check_encoders(fixed: dict[str, Any], search: dict[str, dict[str, Any]], source: str) -> None:
    """Every encoder a trial can get (fixed or searched model_name) must load as a whole (zs_core.encoders.
    check_encoder), and every max_seq_length and freeze_bert_layers_up_to a trial can get must fit it, before
    anything starts: else every trial would fail, after its retry, minutes later."""
    from zs_core.encoders import check_encoder  # transformers: only once the YAML itself is known to be good

    names = _values("model_name", fixed, search)
    for name in names:
        where = f"{source}: {'search' if 'model_name' in search else 'fixed'}.model_name {shown(name)}"
        try:
            facts = check_encoder(str(name))
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
        for key, most, what in (("max_seq_length", facts.positions, "positions"),
                                ("freeze_bert_layers_up_to", facts.layers, "layers")):
            too_many = [v for v in _values(key, fixed, search) if isinstance(v, (int, float)) and v > most]
            if too_many:
                raise InputError(f"{source}: {key} {too_many[0]}: {name} has {most} {what}; expected at most {most}")


def _values(key: str, fixed: dict[str, Any], search: dict[str, dict[str, Any]]) -> list[Any]:
    """The values a trial can get for ``key``: the fixed one (or the default), or the searched ones (a range's
    largest)."""
    if key not in search:
        return [fixed[key] if key in fixed else build_config({}, "defaults").flat()[key]]
    (dist, args), = search[key].items()
    return list(args) if dist in ("choice", "grid") else [args[1] - 1 if dist == "randint" else args[1]]


def _check_metric(sweep: Sweep) -> None:
    reported = reported_metrics(sweep)
    if sweep.tune.metric not in reported:
        raise InputError(f"{sweep.source}: tune.metric {shown(sweep.tune.metric)} is reported by no trial; "
                         f"allowed: {', '.join(sorted(reported))}")


def _read_yaml(path: Path) -> dict:
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    return doc
