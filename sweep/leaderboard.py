"""Parquet leaderboards: atomic writes, grouping over seeds, a printed top table."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sweep.text import column_formatter, model_label  # noqa: F401  (model_label: here too)
from zs_core.config import KEYS, flat_kind
from zs_core.files import atomic_path
from zs_core.protocol import DEV, TEST, TOK_CAL_F1, TOK_F1, TOK_MAP, TRAIN, on_test

# a trial's status: TERMINATED (ran to the end), STOPPED_EARLY (ASHA stopped it), ERROR (raised, after its
# retry), NAN (non-finite loss); the first two finished and can be ranked
FINISHED = ("TERMINATED", "STOPPED_EARLY")
COUNTS = ("seed", "best_step", "epochs_run")  # whole numbers that may be missing (the random row)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write through a temporary sibling and a rename: readers never see half a file."""
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    return Path(path)


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Config columns in their declared types, nullable, so a missing value does not turn ints into floats."""
    kinds = {"int": "Int64", "bool": "boolean", "str": "string"}
    out = frame.copy()
    for column in out.columns:
        kind = flat_kind(column) if column in KEYS else ("int" if column in COUNTS else None)
        kind = "str" if kind and kind.startswith("one of") else kind
        if kind in kinds:
            out[column] = out[column].astype(kinds[kind])
    return out


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith((DEV, TEST, TRAIN))]


def config_columns(frame: pd.DataFrame) -> list[str]:
    """The configuration's columns: the flat config keys (the seed is not one: it is what by_config averages over)."""
    return [c for c in frame.columns if c in KEYS and c != "seed"]


def by_config(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and n over seeds for every metric, one row per configuration (finished trials only)."""
    # in seed order, so the statistics do not depend on the order trials finished in (bit for bit)
    done = frame[frame["status"].isin(FINISHED) & (frame["method"] != "random")].sort_values("seed")
    keys = config_columns(frame)
    metrics = [c for c in metric_columns(frame) if pd.api.types.is_numeric_dtype(frame[c])]
    if done.empty:
        return pd.DataFrame(columns=keys + ["n"])
    grouped = done.groupby(keys, dropna=False, sort=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{metric}_{stat}" for metric, stat in out.columns]
    out["n"] = grouped.size()
    out["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(int(v)) for v in sorted(s)))
    return out.reset_index()


def top_table(frame: pd.DataFrame, metric: str, mode: str, columns: Sequence[str], n: int = 10) -> str:
    """The top ``n`` rows by ``metric`` as aligned text (NaN metrics last); models by their short label."""
    shown = [c for c in columns if c in frame.columns]
    ranked = frame if metric not in frame.columns else frame.sort_values(metric, ascending=(mode == "min"),
                                                                          na_position="last")
    ranked = ranked.head(n)[shown].copy()
    for column in {"model", "model_name"} & set(shown):
        ranked[column] = ranked[column].map(lambda m: m if pd.isna(m) else model_label(str(m)))
    return as_text(ranked)


def as_text(frame: pd.DataFrame) -> str:
    """A table as aligned text, every float column in the notation its values need (sweep.text)."""
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    return frame.to_string(index=False, formatters={c: column_formatter(frame[c]) for c in floats})


def rule_summary(picks: pd.DataFrame) -> pd.DataFrame:
    """Per method and rule (rules.parquet): how many trials, the mean epoch picked, and the mean test token F1
    (fixed and dev-calibrated) and MAP of the evaluations the rule picks; ``n`` counts the trials with test numbers
    (a trial ASHA stopped has none for the last-evaluation rule: compare rules with the fifo scheduler)."""
    shown = [c for c in ("epoch", on_test(TOK_F1), on_test(TOK_CAL_F1), on_test(TOK_MAP)) if c in picks]
    grouped = picks.groupby(["method", "rule", "oracle"], sort=False)
    counted = grouped[on_test(TOK_F1)].count() if on_test(TOK_F1) in picks else grouped.size()
    return grouped[shown].mean().assign(n=counted).reset_index()
