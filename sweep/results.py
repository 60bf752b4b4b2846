"""Tune's ResultGrid -> leaderboard rows; which trials keep their checkpoints."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd

from sweep.space import Sweep, TuneSettings
from sweep.trial import trial_config
from zs_core.config import build_config

FINISHED = ("TERMINATED", "STOPPED_EARLY")


def leaderboard_rows(grid, sweep: Sweep, splits) -> list[dict]:
    """One row per trial: status, the full config, the best epoch's dev metrics, checkpoint, seconds."""
    rows = []
    epochs = build_config(sweep.fixed, sweep.source).train.num_train_epochs
    for result in grid:
        config = build_config(trial_config(result.config, sweep.fixed, sweep.tune.seeds), "trial").flat()
        curve = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        row = {"trial_id": trial_id, "method": "soft_attention", **config, "error": None, "checkpoint": None}
        row.update(best_epoch_metrics(curve, sweep.tune))
        row["status"] = status(result, curve, epochs)
        if result.error is not None:
            row["error"] = first_line(result.error)
        elif row["status"] == "NAN":
            row["error"] = str(curve["nan_error"].dropna().iloc[-1]) if "nan_error" in curve else "NaN loss"
        if result.best_checkpoints:
            row["checkpoint"] = result.best_checkpoints[0][0].path
        if not curve.empty:
            keep = [c for c in curve.columns if c.startswith(("dev/", "train/")) or c in ("epoch", "seconds")]
            row["_curve"] = curve[keep].assign(trial_id=trial_id, seed=config["seed"])
        rows.append(row)
    return rows


def best_epoch_metrics(curve: pd.DataFrame, tune: TuneSettings) -> dict:
    """The epoch that was best by the sweep's metric: its dev metrics, seconds so far, epochs run."""
    if curve.empty or tune.metric not in curve or "epoch" not in curve:
        return {"best_epoch": None, "epochs_run": 0, "seconds": float(curve["seconds"].sum()) if "seconds" in curve else None}
    epochs = curve.dropna(subset=["epoch"])
    values = epochs[tune.metric].astype(float)
    out = {"epochs_run": int(epochs["epoch"].max()) if len(epochs) else 0, "seconds": float(curve["seconds"].sum())}
    if values.notna().any():
        best = values.idxmax() if tune.mode == "max" else values.idxmin()
        out["best_epoch"] = int(epochs.loc[best, "epoch"])
        out.update({c: epochs.loc[best, c] for c in epochs.columns if c.startswith("dev/")})
    else:
        out["best_epoch"] = None
    return out


def status(result, curve: pd.DataFrame, epochs: int) -> str:
    if result.error is not None:
        return "ERROR"
    if "nan_loss" in curve and (curve["nan_loss"] == 1).any():
        return "NAN"
    done = int(curve["epoch"].max()) if "epoch" in curve and curve["epoch"].notna().any() else 0
    return "TERMINATED" if done >= epochs else "STOPPED_EARLY"


def select_kept(rows: list[dict], tune: TuneSettings) -> list[dict]:
    """Keep the best ``keep_top_k`` finished trials' checkpoints; delete the others' from disk."""
    ranked = [r for r in rows if r["status"] in FINISHED and r.get("checkpoint") and _finite(r.get(tune.metric))]
    ranked.sort(key=lambda r: r[tune.metric], reverse=tune.mode == "max")
    kept = ranked[: tune.keep_top_k]
    for row in rows:
        if row.get("checkpoint") and not any(row is k for k in kept):
            shutil.rmtree(row["checkpoint"], ignore_errors=True)
            row["checkpoint"] = None
    return kept


def first_line(error: BaseException) -> str:
    """The root cause's message on one line (Tune wraps the trial's exception)."""
    cause = error
    while getattr(cause, "cause", None) is not None or getattr(cause, "__cause__", None) is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = str(cause).strip().splitlines()
    lines = [t for t in text if t.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:500]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
