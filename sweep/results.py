"""Tune's ResultGrid -> leaderboard rows; which trials keep their checkpoints."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sweep.space import Sweep
from sweep.trial import BEST_AT, trial_config
from zs_core.checkpoint import STATE_FILE
from zs_core.config import TuneConfig, build_config
from zs_core.evaluation import FINISHED



def leaderboard_rows(grid, sweep: Sweep) -> list[dict]:
    """One row per trial: status, the full config, the best epoch's dev metrics, checkpoint, seconds.

    ``_checkpoint`` (the tune.Checkpoint) and ``_curve`` (every epoch) ride along for the caller to pop.
    """
    rows = []
    for result in grid:
        run_config = build_config(trial_config(result.config, sweep.fixed, sweep.tune.seeds), "trial")
        config = run_config.flat()
        curve = last_run(result.metrics_dataframe)
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        row = {"trial_id": trial_id, "method": run_config.model.method, **config, "error": None, "checkpoint": None,
               **{key: _last(curve, key) for key in ("node_id", "pid", "device", "gpu_ids")}}
        row.update(best_epoch_metrics(curve, sweep.tune))
        row["status"] = status(result, curve, config["num_train_epochs"])
        if result.error is not None:
            row["error"] = first_line(result.error)
        elif row["status"] == "NAN":
            row["error"] = _last(curve, "nan_error") or "NaN loss"
        if result.best_checkpoints:  # the best; result.checkpoint is the latest state (the same when it was best)
            row["_checkpoints"] = [c for c, _ in result.best_checkpoints]
            if result.checkpoint is not None:
                row["_checkpoints"].append(result.checkpoint)
            row["_checkpoint"] = max(result.best_checkpoints, key=lambda cm: cm[1].get(BEST_AT, -1))[0]
            row["checkpoint"] = checkpoint_uri(row["_checkpoint"])
        if not curve.empty:
            keep = [c for c in curve.columns if c.startswith(("dev/", "train/")) or c in ("epoch", "step", "seconds")]
            row["_curve"] = curve[keep].assign(trial_id=trial_id, seed=config["seed"])
        rows.append(row)
    return rows


def last_run(curve: pd.DataFrame | None) -> pd.DataFrame:
    """The evaluations of the trial's last run: a trial retried or resumed from its latest state goes on (one
    run); one that had no state to go on from started again at epoch 0, and only its last run counts."""
    if curve is None or curve.empty:
        return pd.DataFrame()
    if "epoch" not in curve:
        return curve.reset_index(drop=True)
    epoch = curve["epoch"].ffill().fillna(0).to_numpy()
    restarts = [i for i in range(1, len(epoch)) if epoch[i] <= epoch[i - 1] and not math.isnan(curve["epoch"].iloc[i])]
    return curve.iloc[restarts[-1] if restarts else 0:].reset_index(drop=True)


def best_epoch_metrics(curve: pd.DataFrame, tune: TuneConfig) -> dict:
    """The evaluation that was best by the sweep's metric: its (fractional) epoch, step and dev metrics,
    the seconds of the whole run, and the epochs run."""
    seconds = float(curve["seconds"].sum()) if "seconds" in curve else None
    out = {"best_epoch": None, "best_step": None, "epochs_run": 0, "seconds": seconds}
    if curve.empty or tune.metric not in curve or "epoch" not in curve:
        return out
    epochs = curve.dropna(subset=["epoch"])
    values = epochs[tune.metric].astype(float)
    out["epochs_run"] = int(epochs["epoch"].max()) if len(epochs) else 0
    if values.notna().any():
        best = values.idxmax() if tune.mode == "max" else values.idxmin()
        out["best_epoch"] = float(epochs.loc[best, "epoch"])
        if "step" in epochs:
            out["best_step"] = int(epochs.loc[best, "step"])
        out.update({c: epochs.loc[best, c] for c in epochs.columns if c.startswith("dev/")})
    return out


def status(result, curve: pd.DataFrame, epochs: int) -> str:
    """ERROR (raised, after its retry), NAN (non-finite loss), TERMINATED (all epochs), STOPPED_EARLY (ASHA)."""
    if result.error is not None:
        return "ERROR"
    if "nan_loss" in curve and (curve["nan_loss"] == 1).any():
        return "NAN"
    done = int(curve["epoch"].max()) if "epoch" in curve and curve["epoch"].notna().any() else 0
    return "TERMINATED" if done >= epochs else "STOPPED_EARLY"


def select_kept(rows: list[dict], tune: TuneConfig) -> list[dict]:
    """Keep the best ``keep_top_k`` finished trials' checkpoints; delete the others' from storage, and every
    trial's latest state (a separate checkpoint, or the resume file inside its best)."""
    for row in rows:
        for checkpoint in row.pop("_checkpoints", []):
            if checkpoint.path != row["_checkpoint"].path and _exists(checkpoint):
                checkpoint.filesystem.delete_dir(checkpoint.path)
        if row.get("_checkpoint") is not None:
            state = f"{row['_checkpoint'].path}/{STATE_FILE}"
            if _exists(row["_checkpoint"], state):
                row["_checkpoint"].filesystem.delete_file(state)
        if row.get("_checkpoint") is not None and not _exists(row["_checkpoint"]):  # gone in an earlier pass
            row["_checkpoint"] = row["checkpoint"] = None
    ranked = [r for r in rows if r["status"] in FINISHED and r.get("_checkpoint") and _finite(r.get(tune.metric))]
    ranked.sort(key=lambda r: r[tune.metric], reverse=tune.mode == "max")
    kept = ranked[: tune.keep_top_k]
    for row in rows:
        if row.get("_checkpoint") is not None and not any(row is k for k in kept):
            row["_checkpoint"].filesystem.delete_dir(row["_checkpoint"].path)
            row["_checkpoint"] = row["checkpoint"] = None
    return kept


def checkpoint_uri(checkpoint) -> str:
    """A local path, or ``scheme://path`` for checkpoints in remote storage."""
    kind = checkpoint.filesystem.type_name
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


def first_line(error: BaseException) -> str:
    """The root cause's message on one line (Tune wraps the trial's exception)."""
    cause = error
    while getattr(cause, "cause", None) is not None or getattr(cause, "__cause__", None) is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    lines = [t for t in str(cause).strip().splitlines() if t.strip()]
    return f"{type(cause).__name__}: {lines[-1].strip() if lines else ''}"[:500]


def _exists(checkpoint, path: str | None = None) -> bool:
    from pyarrow.fs import FileType

    return checkpoint.filesystem.get_file_info(path or checkpoint.path).type != FileType.NotFound


def _last(curve: pd.DataFrame, column: str):
    if column not in curve:
        return None
    values = curve[column].dropna()
    return values.iloc[-1] if len(values) else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
