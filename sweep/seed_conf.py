"""The seed's .conf files (INI, one ``[config]`` section) with the meaning they had in the seed, for every
command: ``sweep.run trial.conf`` (``sweep_doc``), ``sweep.predict --config`` and ``sweep.evaluate --config``
(``apply_predict_conf``, ``apply_evaluate_conf``: what the command line leaves open comes from the conf).

``seed_config(raw, source, stage)`` turns a .conf into zs-sweep's config:

* an omitted key takes the seed's default, not zs-sweep's (``SEED_DEFAULTS``);
* what the seed's code always did becomes explicit (``SEED_BEHAVIOUR``): soft attention over the
  end-of-sentence token too, a 2-way cross-entropy sentence loss, warm-up counted in sentences;
* ``logging_steps`` (the seed evaluated and saved every that many steps) becomes ``eval_steps``;
* keys that name files, stages or prediction settings are accepted and left to the command that uses them
  (``SEED_ONLY_KEYS``); settings zs-sweep cannot reproduce yet are refused with one line.
"""
from __future__ import annotations

import argparse
import configparser
import datetime as dt
import math
import os
from pathlib import Path
from typing import Any, Sequence

from sweep.common import Parser
from zs_core.config import DATASETS, KEYS, RunConfig, build_config, flat_kind
from zs_core.errors import InputError, error_line, shown
from zs_core.layouts import SEED_DATASET_NAMES

CONF_STAGES = ("train", "predict", "evaluate")  # the seed's three stages, each with its own .conf
PLACEHOLDERS = ("method", "experiment_name", "model_name", "dataset_name", "datetime")
RESULT_KEYS = ("eval_results_filename", "eval_results_filaname")  # the seed spelled it both ways
# sweep.predict's argparse destination <- the prediction conf's key (the command line wins)
PREDICT_KEYS = {"model": "model_path", "split": "dataset_split", "layer": "attn_layer_id", "head": "attn_head_id",
                "seed": "seed", "batch_size": "per_device_eval_batch_size", "max_seq_length": "max_seq_length",
                "lowercase": "lowercase", "lime_samples": "lime_num_samples",
                "lime_replace": "lime_mask_string_use_pad", "method": "method"}
INT_ARGS = ("layer", "head", "seed", "batch_size", "max_seq_length", "lime_samples")
# The seed's own defaults for keys a .conf may omit (its code read them with config_dict.get(key, default)).
SEED_DEFAULTS = {"soft_attention": False, "square_attention": False, "soft_attention_alpha": 0.0,
                 "soft_attention_gamma": 0.0, "soft_attention_beta": 0.0, "zero_n": 0, "zero_delta": 0.0}
# What the seed's code did whatever its .conf said; options (off by default) in zs-sweep's YAML.
SEED_BEHAVIOUR = {"attend_sep": True, "sentence_loss": "ce2", "warmup_unit": "sentences"}
# Keys of the seed's .conf files that name files, stages or settings of another command; accepted here.
# soft_attentiong_beta is the seed's misspelling in one evaluation file; the seed read soft_attention_beta
# only, so it set nothing there, and sets nothing here.
SEED_ONLY_KEYS = frozenset({
    "experiment_name", "dataset", "dataset_split", "model_path", "datetime", "method", "results_input_dir",
    "results_input_filename", "preds_output_filename", "eval_results_filename", "eval_results_filaname",
    "test_label_dummy", "make_all_labels_equal_max", "save_steps", "logging_steps",
    "output_dir", "output_file", "attn_layer_id", "attn_head_id", "lime_num_samples",
    "lime_mask_string_use_pad", "soft_attentiong_beta",
})


def read_seed_conf(path: str | Path) -> dict[str, str]:
    """The seed's INI file (section ``[config]``) as a flat dict of raw strings."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep key case
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as err:
        raise InputError(f"{path}: not an INI file ({error_line(err)})") from None
    if not parser.has_section("config"):
        raise InputError(f"{path}: expected a [config] section")
    return {key: value.strip() for key, value in parser.items("config")}


def seed_flag(raw: dict[str, str], key: str, source: str, default: bool) -> bool:
    """A True/False key of a seed .conf."""
    value = raw.get(key)
    if value is None or value == "":
        return default
    if value.lower() not in ("true", "false"):
        raise InputError(f"{source}: key {shown(key)} expects True or False, got {shown(value)}")
    return value.lower() == "true"


def seed_int(raw: dict[str, str], key: str, source: str) -> int | None:
    """A whole-number key of a seed .conf (None when absent)."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        if "_" in value:  # int() would read 1_0 as 10
            raise ValueError(value)
        return int(value, 10)
    except ValueError:
        raise InputError(f"{source}: key {shown(key)} expects a whole number, got {shown(value)}") from None


def seed_float(raw: dict[str, str], key: str, source: str) -> float | None:
    """A number key of a seed .conf (None when absent)."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
        if "_" in value or not math.isfinite(number):  # float() reads 1_0 as 10, and nan and inf
            raise ValueError(value)
        return number
    except ValueError:
        raise InputError(f"{source}: key {shown(key)} expects a finite number, got {shown(value)}") from None


def check_supported(raw: dict[str, str], source: str, stage: str) -> None:
    """Refuse, in one line, what a stage would silently get wrong."""
    if stage not in CONF_STAGES:
        raise ValueError(f"stage {shown(stage)}; expected one of {', '.join(CONF_STAGES)}")
    if stage == "train" and not seed_flag(raw, "make_all_labels_equal_max", source, True):
        raise InputError(f"{source}: make_all_labels_equal_max = False (the sentence label taken from the "
                         f"first token) is not supported; zs-sweep labels a sentence positive when any word is")


def seed_config(raw: dict[str, str], source: str, stage: str = "train") -> RunConfig:
    """A seed .conf as zs-sweep's config, with the seed's meaning (its strings converted and checked)."""
    return build_config(seed_flat(raw, source, stage), source, strict=False)


def seed_flat(raw: dict[str, str], source: str, stage: str = "train") -> dict[str, Any]:
    """A seed .conf's config keys, with the seed's meaning, as raw strings for ``build_config``."""
    check_supported(raw, source, stage)
    flat: dict[str, Any] = {**SEED_DEFAULTS, **SEED_BEHAVIOUR}
    flat.update({k: v for k, v in raw.items() if k not in SEED_ONLY_KEYS and v != ""})  # empty: omitted
    for key, value in raw.items():  # pydantic's string conversion would read 1_0 as 10
        if key in KEYS and "_" in value and flat_kind(key) in ("int", "float"):
            raise InputError(f"{source}: key {shown(key)} expects a {flat_kind(key)}, got {shown(value)}")
    steps = seed_int(raw, "logging_steps", source)  # the seed saved and evaluated every logging_steps
    if steps is not None and stage == "train":
        if steps < 1:
            raise InputError(f"{source}: key 'logging_steps' must be at least 1, got {steps}")
        flat["eval_steps"] = steps
    return flat


def stage_conf(path: str | os.PathLike, stage: str, overrides: Sequence[str] = ()) -> dict[str, str]:
    """A seed stage's .conf with ``key=value`` overrides applied, every config key and type checked; the raw
    strings, for the command to pick its own keys from."""
    raw = read_seed_conf(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{shown(item)}: expected key=value")
        raw[key.strip()] = value.strip()
    seed_config(raw, str(path), stage)
    return raw


def fill_placeholders(template: str, conf: dict[str, str], now: dt.datetime | None = None) -> str:
    """The seed's ``{method}`` ``{experiment_name}`` ``{model_name}`` ``{dataset_name}`` ``{datetime}`` in a
    path, from the conf (dataset_name = ``dataset``; datetime = ``datetime`` when given, else now)."""
    stamp = (now or dt.datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    values = {"method": conf.get("method", ""), "experiment_name": conf.get("experiment_name", ""),
              "model_name": conf.get("model_name", ""), "dataset_name": conf.get("dataset", ""),
              "datetime": conf.get("datetime") or stamp}
    for key in PLACEHOLDERS:
        template = template.replace("{" + key + "}", values[key])
    return template


def sweep_doc(path: Path) -> dict:
    """``sweep.run trial.conf``: one fixed configuration with the seed's meaning, its seed the only seed."""
    raw = read_seed_conf(path)
    typed = seed_config(raw, str(path), "train").flat()
    fixed = {k: v for k, v in typed.items() if k != "seed"}
    tune: dict[str, Any] = {"num_samples": 1, "searcher": "random", "scheduler": "fifo"}
    if "seed" in raw:
        tune["seeds"] = [typed["seed"]]
    return {"name": raw.get("experiment_name", path.stem), "data": conf_data(raw, str(path)),
            "fixed": fixed, "tune": tune}


def conf_data(conf: dict[str, str], source: str, instead: str = "") -> dict[str, str]:
    """A .conf's ``dataset`` as a data block: one of the seed's datasets (its root from --data-root or
    $ZS_DATA_ROOT) or a named dataset (wnut16, also when the conf names none); ``instead``: what else the
    user may give, named in the error."""
    name = conf.get("dataset") or "wnut16"
    if name in SEED_DATASET_NAMES:
        return {"seed_dataset": name}
    if name not in DATASETS:
        alternative = f", or give {instead}" if instead else ""
        raise InputError(f"{source}: dataset {shown(name)} is not a known dataset; expected one of "
                         f"{', '.join((*SEED_DATASET_NAMES, *DATASETS))}{alternative}")
    return {"dataset": name}


def conf_parser(prog: str, doc: str, stage: str) -> Parser:
    """A command line that also takes the seed's .conf of one stage: --config FILE [key=value ...]."""
    p = Parser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of --config's keys")
    p.add_argument("--config", help=f"a seed .conf of the {stage} stage (section [config])")
    return p


def read_conf(args: argparse.Namespace, stage: str) -> dict[str, str] | None:
    """--config with its key=value overrides applied (None without --config)."""
    if not args.config:
        if args.overrides:
            raise InputError(f"{shown(args.overrides[0])}: key=value overrides need --config")
        return None
    return stage_conf(args.config, stage, args.overrides)


def conf_dataset(args: argparse.Namespace, conf: dict[str, str], instead: str) -> None:
    """The conf's ``dataset`` as --data or --seed-dataset, unless the command line names the data
    (``instead``: what else to give)."""
    if args.data or args.data_dir or args.seed_dataset or getattr(args, "gold", None) or not conf.get("dataset"):
        return
    block = conf_data(conf, args.config, instead)
    args.seed_dataset, args.data = block.get("seed_dataset"), block.get("dataset")


def apply_predict_conf(args: argparse.Namespace) -> None:
    """sweep.predict: fill what the command line left open from --config (the command line wins)."""
    conf = read_conf(args, "predict")
    if conf is None:
        return
    for dest, key in PREDICT_KEYS.items():
        if getattr(args, dest) is None and conf.get(key):
            value = conf[key]
            if dest in INT_ARGS:
                value = seed_int(conf, key, args.config)
            elif dest == "lowercase":
                value = seed_flag(conf, key, args.config, False)
            elif dest == "lime_replace":
                value = "pad" if seed_flag(conf, key, args.config, False) else "mask"
            setattr(args, dest, value)
    if args.output is None and conf.get("output_file"):
        args.output = fill_placeholders(conf["output_file"], {**conf, "method": args.method or ""})
    conf_dataset(args, conf, "--data-dir DIR --positive-labels ...")


def apply_evaluate_conf(args: argparse.Namespace) -> None:
    """sweep.evaluate: fill what the command line left open from the evaluation .conf (the command line wins)."""
    conf = read_conf(args, "evaluate")
    if conf is None:
        return
    folder = fill_placeholders(conf.get("results_input_dir", ""), conf)
    if args.preds is None and conf.get("results_input_filename"):
        args.preds = os.path.join(folder, fill_placeholders(conf["results_input_filename"], conf))
    out = next((conf[k] for k in RESULT_KEYS if conf.get(k)), None)
    if args.json_out is None and out:
        args.json_out = os.path.join(folder, fill_placeholders(out, conf))
    if args.threshold is None:
        args.threshold = seed_float(conf, "importance_threshold", args.config)
    if args.top_k is None:
        args.top_k = seed_int(conf, "top_count", args.config)
    if args.split is None:
        args.split = conf.get("dataset_split") or None
    conf_dataset(args, conf, "--gold FILE")
