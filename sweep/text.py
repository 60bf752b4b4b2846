"""Numbers and names as people read them, the same in the terminal, the HTML report and trial folder names:
a value below 1e-3 (a learning rate) or from 1e5 up in scientific notation, 3.00e-05, never 0.0000; the
others with 4 decimals. A column takes one notation for all its values, so a column of learning rates from
1e-5 to 1e-3 reads 1.00e-05 ... 1.00e-03, not 1.00e-05 ... 0.0010."""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable

SMALL, LARGE = 1e-3, 1e5  # outside [SMALL, LARGE): scientific notation
DECIMALS, MANTISSA = 4, 2  # fixed-point decimals; decimals of the scientific mantissa (3.00e-05)
MOST_DIRNAME = 120  # characters of a trial folder name (Tune's default limit is 130, plus a date)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def needs_scientific(values: Iterable[Any]) -> bool:
    """Whether a column of these values reads best in scientific notation: some non-zero finite value lies
    outside [SMALL, LARGE)."""
    return any(_finite(v) and v != 0 and not SMALL <= abs(v) < LARGE for v in values)


def float_text(value: Any, scientific: bool) -> str:
    if not _finite(value):
        return "NaN" if value != value else str(value)
    return f"{value:.{MANTISSA}e}" if scientific else f"{value:.{DECIMALS}f}"


def number_text(value: Any) -> str:
    """One float on its own (a progress line, a folder name)."""
    return float_text(value, needs_scientific([value]))


def column_formatter(values: Iterable[Any]) -> Callable[[Any], str]:
    """The formatter of one float column: the notation its values need, for every value in it."""
    scientific = needs_scientific(list(values))
    return lambda value: float_text(value, scientific)


def value_text(value: Any) -> str:
    """A config value in a name: floats by ``number_text``, anything else as text."""
    return number_text(value) if isinstance(value, float) else str(value)


def trial_dirname(trial, seeds: tuple[int, ...] = (), index_key: str = "__trial_index__") -> str:
    """Tune's ``trial_dirname_creator``: ``train_trial_<trial id>_<number>_<key>-<value>_...`` with the sampled
    values readable (learning_rate-3.00e-05) and the seed the trial runs (seed-2), without commas, ``=`` or a
    date; the trial id stays where sweep.leaderboard.model_label finds it."""
    number = str(trial.experiment_tag).split("_", 1)[0] or "0"
    config = dict(trial.config)
    if "seed" not in config and index_key in config and seeds:
        config["seed"] = seeds[int(config[index_key]) % len(seeds)]
    parts = [f"{key}-{value_text(value)}" for key, value in sorted(config.items()) if not key.startswith("__")]
    name = "_".join([trial.trainable_name, trial.trial_id, number, *parts])
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)[:MOST_DIRNAME]


CHECKPOINT_DIR = re.compile(r"checkpoint_\d+")
# Ray Tune's trial folder: {trainable}_{trial id}_{number}_{params}_{date}; the id as the leaderboard shows it
TRIAL_DIR = re.compile(r"(?:^|_)([0-9a-f]{5}_\d{5}|[0-9a-f]{8})_\d+(?:_|$)")


def model_label(path_or_name: str) -> str:
    """A short name for a model in tables and plot titles: a built-in name as it is; a checkpoint inside a
    Ray Tune trial folder (or the trial folder) its trial id, e.g. ``0e5cf_00000``; another checkpoint_N
    folder ``parent/checkpoint_N``; any other path its folder's own name."""
    parts = [p for p in re.split(r"[/\\]+", str(path_or_name).strip()) if p]
    if not parts:
        return str(path_or_name)
    name = parts[-1]
    trial = TRIAL_DIR.search(name)
    if trial:
        return trial.group(1)
    if CHECKPOINT_DIR.fullmatch(name) and len(parts) > 1:
        trial = TRIAL_DIR.search(parts[-2])
        return trial.group(1) if trial else f"{parts[-2]}/{name}"
    return name
