"""Tune's ResultGrid -> leaderboard rows; which trials keep their checkpoints."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sweep.leaderboard import FINISHED
from sweep.space import Sweep, TuneConfig
from sweep.trial import BEST_AT, trial_config
from zs_core.checkpoint import STATE_FILE
from zs_core.config import build_config
from zs_core.errors import error_line
from zs_core.protocol import (
    DEV,
    EPOCH,
    SECONDS,
    STEP,
    TEST,
    TRAIN,
    model_method,
    pick,
    rank_key,
    rules_for,
    selection_rule,
)


class TrialResult(dict):
    """A leaderboard row (the dict) and what rides along with it: ``checkpoint`` (the tune.Checkpoint kept as
    best), ``checkpoints`` (every one Tune still holds), ``curve`` (every dev evaluation) and ``picks`` (one
    row per selection rule: the evaluation it picks, with that evaluation's dev and test metrics)."""

    def __init__(self, row: dict):
        super().__init__(row)
        self.checkpoint, self.checkpoints, self.curve, self.picks = None, [], None, []


def leaderboard_rows(grid, sweep: Sweep) -> list[TrialResult]:
    """One row per trial: status, the full config, the picked evaluation's dev metrics, checkpoint, seconds."""
    rows = []
    for result in grid:
        run_config = build_config(trial_config(result.config, sweep.fixed, sweep.tune.seeds), "trial")
        config = run_config.flat()
        curve = last_run(result.metrics_dataframe)
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        method = model_method(run_config.model)
        row = TrialResult({"trial_id": trial_id, "method": method, **config, "error": None, "checkpoint": None,
                           **{key: _last(curve, key) for key in ("node_id", "pid", "device", "gpu_ids")}})
        row.update(best_epoch_metrics(curve, sweep.tune))
        row["status"] = status(result, curve, config["num_train_epochs"])
        if result.error is not None:
            row["error"] = error_line(result.error, with_type=True)
        elif row["status"] == "NAN":
            row["error"] = _last(curve, "nan_error") or "NaN loss"
        if result.best_checkpoints:  # the best; result.checkpoint is the latest state (the same when it was best)
            row.checkpoints = [c for c, _ in result.best_checkpoints]
            if result.checkpoint is not None:
                row.checkpoints.append(result.checkpoint)
            row.checkpoint = max(result.best_checkpoints, key=lambda cm: cm[1].get(BEST_AT, -1))[0]
            row["checkpoint"] = checkpoint_uri(row.checkpoint)
        if not curve.empty:
            keep = [c for c in curve.columns if c.startswith((DEV, TEST, TRAIN))
                    or c in (EPOCH, STEP, SECONDS)]
            row.curve = curve[keep].assign(trial_id=trial_id, seed=config["seed"])
            row.picks = rule_picks(row.curve, method, sweep.tune.rules)
        rows.append(row)
    return rows


def last_run(curve: pd.DataFrame | None) -> pd.DataFrame:
    """The evaluations of the trial's last run: a report at an epoch replaces every earlier report at that
    epoch or later. A trial retried or resumed from its latest state goes on (one run; Tune may have logged
    the report of the last evaluation before it registered that evaluation's checkpoint, and the resumed run
    reports it again); one that had no state to go on from starts again at epoch 0, and only its last run
    counts."""
    if curve is None or curve.empty:
        return pd.DataFrame()
    if "epoch" not in curve:
        return curve.reset_index(drop=True)
    kept: list[int] = []
    for i, epoch in enumerate(curve["epoch"]):
        if not math.isnan(epoch):
            while kept and not math.isnan(curve["epoch"].iloc[kept[-1]]) and curve["epoch"].iloc[kept[-1]] >= epoch:
                kept.pop()
        kept.append(i)
    return curve.iloc[kept].reset_index(drop=True)


def evaluations(curve: pd.DataFrame) -> list[dict]:
    """A run's dev evaluations, in order, as dicts (the reports that carry an epoch)."""
    if curve.empty or "epoch" not in curve:
        return []
    return curve.dropna(subset=["epoch"]).to_dict("records")


def best_epoch_metrics(curve: pd.DataFrame, tune: TuneConfig) -> dict:
    """The evaluation the sweep's metric picks (zs_core.protocol.pick): its (fractional) epoch, step and dev
    metrics, the seconds of the whole run, and the epochs run."""
    seconds = float(curve["seconds"].sum()) if "seconds" in curve else None
    out = {"best_epoch": None, "best_step": None, "epochs_run": 0, "seconds": seconds}
    runs = evaluations(curve)
    if not runs or tune.metric not in curve:
        return out
    out["epochs_run"] = int(max(r["epoch"] for r in runs))
    chosen = runs[pick(selection_rule(tune.metric, tune.mode), runs)]
    if _finite(chosen.get(tune.metric)):
        out.update(best_epoch=float(chosen["epoch"]), best_step=_int(chosen.get("step")))
        out.update({k: v for k, v in chosen.items() if k.startswith(DEV)})
    return out


def rule_picks(curve: pd.DataFrame, method: str, scored: tuple[str, ...]) -> list[dict]:
    """One row per selection rule of ``method``: what it picks among the run's evaluations, with that
    evaluation's dev metrics and, for the rules ``scored`` on test inside the trial, its test metrics."""
    runs = evaluations(curve)
    out = []
    for rule in rules_for(method) if runs else ():
        chosen = runs[pick(rule, runs)]
        test = {k: v for k, v in chosen.items() if k.startswith(TEST)} if rule.name in scored else {}
        out.append({"rule": rule.name, "oracle": rule.oracle, "rule_metric": rule.metric,
                    "epoch": float(chosen["epoch"]), "step": _int(chosen.get("step")),
                    **{k: v for k, v in chosen.items() if k.startswith(DEV)}, **test})
    return out


def _int(value) -> int | None:
    return int(value) if _finite(value) else None


def status(result, curve: pd.DataFrame, epochs: int) -> str:
    """ERROR (raised, after its retry), NAN (non-finite loss), TERMINATED (all epochs), STOPPED_EARLY (ASHA, or
    early_stopping_patience: dev stopped improving)."""
    if result.error is not None:
        return "ERROR"
    if "nan_loss" in curve and (curve["nan_loss"] == 1).any():
        return "NAN"
    done = int(curve["epoch"].max()) if "epoch" in curve and curve["epoch"].notna().any() else 0
    return "TERMINATED" if done >= epochs else "STOPPED_EARLY"


def select_kept(rows: list[TrialResult], tune: TuneConfig) -> list[TrialResult]:
    """Keep the best ``keep_top_k`` finished trials' checkpoints (ranked by the sweep's rule, ties by its
    tie-break); delete the others' from storage, and every trial's latest state (a separate checkpoint, or
    the resume file inside its best)."""
    for row in rows:
        for checkpoint in row.checkpoints:
            if checkpoint.path != row.checkpoint.path and _exists(checkpoint):
                checkpoint.filesystem.delete_dir(checkpoint.path)
        row.checkpoints = []
        if row.checkpoint is not None:
            state = f"{row.checkpoint.path}/{STATE_FILE}"
            if _exists(row.checkpoint, state):
                row.checkpoint.filesystem.delete_file(state)
        if row.checkpoint is not None and not _exists(row.checkpoint):  # gone in an earlier pass
            row.checkpoint = row["checkpoint"] = None
    rule = selection_rule(tune.metric, tune.mode)
    ranked = [r for r in rows if r["status"] in FINISHED and r.checkpoint and _finite(r.get(tune.metric))]
    ranked.sort(key=lambda r: rank_key(rule, r), reverse=True)
    kept = ranked[: tune.keep_top_k]
    for row in rows:
        if row.checkpoint is not None and not any(row is k for k in kept):
            row.checkpoint.filesystem.delete_dir(row.checkpoint.path)
            row.checkpoint = row["checkpoint"] = None
    return kept


def checkpoint_uri(checkpoint) -> str:
    """A local path, or ``scheme://path`` for checkpoints in remote storage."""
    kind = checkpoint.filesystem.type_name
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


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


def rule_table(rows: list[TrialResult], sweep: Sweep, stamp: dict) -> pd.DataFrame:
    """rules.parquet: per finished trial and selection rule, the evaluation the rule picks (epoch, step),
    its dev metrics and (for the rules in tune.rules) its test metrics; trial_id, method, seed and the
    searched keys say whose pick it is, ``oracle`` whether the rule used token labels."""
    from sweep.leaderboard import typed

    records = [{"trial_id": row["trial_id"], "method": row["method"], "seed": row["seed"],
                **{k: row.get(k) for k in sweep.search}, **pick_row, **stamp}
               for row in rows if row.get("status") in FINISHED for pick_row in getattr(row, "picks", [])]
    return typed(pd.DataFrame(records)) if records else pd.DataFrame()


def write_results(rows: list[dict], sweep: Sweep, out: Path, command: str, quiet: bool = False) -> None:
    """leaderboard.parquet, leaderboard_by_config.parquet, curves.parquet and rules.parquet (each atomic, every
    row with the provenance), then the top table and what each rule picks, printed."""
    from sweep.common import provenance
    from sweep.leaderboard import as_text, by_config, rule_summary, top_table, typed, write_parquet
    from zs_core.data import SPLITS
    from zs_core.protocol import TOK_CAL_F1, TOK_F1, TOK_MAP, on_dev, on_test

    stamp = provenance(command, sweep.data, SPLITS)
    curves = [r.curve for r in rows if getattr(r, "curve", None) is not None]
    frame = typed(pd.DataFrame([{**row, **stamp} for row in rows]))
    write_parquet(frame, out / "leaderboard.parquet")
    write_parquet(by_config(frame), out / "leaderboard_by_config.parquet")
    if curves:
        write_parquet(pd.concat(curves, ignore_index=True), out / "curves.parquet")
    picks = rule_table(rows, sweep, stamp)
    if not picks.empty:
        write_parquet(picks, out / "rules.parquet")
    shown = ["trial_id", "status", "seed", *sweep.search, "best_epoch", sweep.tune.metric, on_dev(TOK_MAP),
             on_dev(TOK_CAL_F1), on_test(TOK_F1), on_test(TOK_CAL_F1), on_test(TOK_MAP)]
    trials = frame[frame["trial_id"] != "random"]
    counts = ", ".join(f"{n} {status}" for status, n in trials["status"].value_counts().items())
    print(f"\nTop 10 by {sweep.tune.metric} ({sweep.tune.mode}) of {len(trials)} trials ({counts}):")
    print(top_table(frame, sweep.tune.metric, sweep.tune.mode, shown))
    if quiet:
        return
    if not picks.empty:
        print("\nWhat each selection rule picks (test, mean over finished trials; oracle_* use token labels):")
        print(as_text(rule_summary(picks)))
    print(f"\nwrote {out / 'leaderboard.parquet'} ({len(frame)} rows) and {out / 'leaderboard_by_config.parquet'}")
