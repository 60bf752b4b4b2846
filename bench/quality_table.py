"""bench/quality.py's tables: one per task, rows = methods, token metrics on test, mean ± std over seeds."""
from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.common import provenance

COLUMNS = ("sent_f1", "precision", "recall", "f1", "f05", "map")
HEADER = "| method | n test sentences | sent F1 | tok P | tok R | tok F1 | tok F0.5 | MAP | paper tok F1 |"
# Bujel, Yannakoudakis & Rei (2021), FCE, roberta-base: token F1 per method; sentence F1 85.62
PAPER = {"fce": {"random": 23.19, "lime": 24.60, "soft_attention@0.5": 33.31}}
PAPER_SENT_F1 = {"fce": 85.62}
PAPER_PROFILE = {"fce": (20.76, 85.36, 33.31)}  # soft attention at 0.5 on test: precision, recall, F1
ABLATED = ("square_attention", "zero_delta", "attend_sep", "sentence_loss")


def _cell(values) -> str:
    values = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"


def _evaluated(home: Path, name: str) -> dict | None:
    path = home / "preds" / name / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _calibrated(m: dict) -> dict:
    """sweep.evaluate's row at the dev-calibrated threshold."""
    row = next(r for r in m["rows"] if r["threshold_kind"] == "dev_calibrated")
    return {k: row[k] for k in ("precision", "recall", "f1", "f05", "map")}


def method_rows(task: str, home: Path, preset: dict) -> list[dict]:
    """[{method, threshold, n, values: {column: [per seed]}}] for whatever stages have finished."""
    rows = []
    heads = home / "heads_test" / "heads.parquet"
    if heads.is_file():  # sweep.heads' random row: whole test set, fixed seed, threshold calibrated on dev
        frame = pd.read_parquet(heads)
        random = frame[(frame["method"] == "random") & (frame["threshold_kind"] == "dev_calibrated")].head(1)
        if len(random):
            rows.append({"method": "random", "key": "random", "threshold": "dev-cal",
                         "n": int(random["n_sentences"].iloc[0]),
                         "values": {c: [float(random[c].iloc[0])] for c in COLUMNS if c != "sent_f1"}})
    best_sent = None
    final = home / "final" / "leaderboard.parquet"
    if final.is_file():
        seeds_board = finished(final)
        chosen = seeds_board.sort_values("dev/sent_f1", ascending=False).head(1)
        best_sent = [float(chosen["test/sent_f1"].iloc[0])] if len(chosen) else None
        rows += seed_rows(seeds_board, "soft attention", "soft_attention")
    untrained = preset["model"]
    for model, label in (("trained", "best head, fine-tuned"), (untrained, f"best head, untrained {untrained}")):
        head = best_head(home, model, untrained)
        if head is not None:
            values = {c: [head[c]] for c in COLUMNS if c != "sent_f1"}
            if model == "trained" and best_sent:
                values["sent_f1"] = best_sent
            rows.append({"method": f"{label} (L{head['layer']} H{head['head']} {head['pooling']})",
                         "key": f"head_{model}", "threshold": "dev-cal", "values": values,
                         "n": int(head["n_sentences"])})
    for name, label in (("lime", "LIME"), ("soft_attention_sample", "soft attention"),
                        ("random_sample", "random")):
        m = _evaluated(home, name)
        if m is not None:
            values = {c: [v] for c, v in _calibrated(m).items()}
            if name == "lime" and best_sent:
                values["sent_f1"] = best_sent
            rows.append({"method": f"{label}, LIME's sample", "key": name, "threshold": "dev-cal",
                         "values": values, "n": preset["lime_sample"]})
    ceiling = home / "ceiling" / "leaderboard.parquet"
    if ceiling.is_file():
        rows += seed_rows(finished(ceiling), "supervised ceiling", "supervised", sentence=False)
    return rows


def finished(path: Path) -> pd.DataFrame:
    """A leaderboard's trials that were scored on test (not the random row)."""
    board = pd.read_parquet(path)
    return board[(board["method"] != "random") & board["test/tok_f1"].notna()]


def seed_rows(board: pd.DataFrame, label: str, key: str, sentence: bool = True) -> list[dict]:
    """Two rows (at 0.5 and at the dev-calibrated threshold) with one value per seed (trial)."""
    rows = []
    for prefix, threshold in (("test/tok_", "0.5"), ("test/tok_cal_", "dev-cal")):
        values = {c: list(board[f"{prefix}{c}"]) for c in ("precision", "recall", "f1", "f05")}
        values["map"] = list(board["test/tok_map"])
        if sentence:
            values["sent_f1"] = list(board["test/sent_f1"])
        rows.append({"method": label, "key": f"{key}@{'0.5' if threshold == '0.5' else 'cal'}",
                     "threshold": threshold, "values": values, "seeds": len(board),
                     "n": int(board["test/n_sentences"].iloc[0]) if len(board) else None})
    return rows


def best_head(home: Path, model: str, untrained: str) -> dict | None:
    """The test row of the head with the best dev MAP; ``model``: the untrained encoder's name or "trained"."""
    dev_file, test_file = home / "heads_dev" / "heads.parquet", home / "heads_test" / "heads.parquet"
    if not (dev_file.is_file() and test_file.is_file()):
        return None
    dev, test = pd.read_parquet(dev_file), pd.read_parquet(test_file)
    pick = (lambda f: f["model"] == untrained) if model == untrained else (lambda f: f["model"] != untrained)
    dev = dev[pick(dev) & (dev["method"] == "head")]
    if dev.empty:
        return None
    top = dev.sort_values("map", ascending=False).iloc[0]
    test = test[pick(test) & (test["layer"] == top["layer"]) & (test["head"] == top["head"])
                & (test["pooling"] == top["pooling"])]
    return {**test.iloc[0].to_dict(), "layer": int(top["layer"]), "head": int(top["head"])}


def task_table(task: str, home: Path, preset: dict) -> str:
    lines = [f"### {task}", "", HEADER, "|" + "---|" * 9]
    for row in method_rows(task, home, preset):
        paper = PAPER.get(task, {}).get(row["key"])
        n = row.get("n") or ""
        seeds = f" ({row['seeds']} seeds)" if row.get("seeds", 0) > 1 else ""
        cells = [_cell(row["values"].get(c, [])) for c in COLUMNS]
        lines.append(f"| {row['method']} @{row['threshold']}{seeds} | {n or '–'} | " + " | ".join(cells)
                     + f" | {'' if paper is None else f'{paper:.2f}'} |")
    if task in PAPER_SENT_F1:
        p, r, f = PAPER_PROFILE[task]
        lines += ["", f"Paper (roberta-base): sentence F1 {PAPER_SENT_F1[task]:.2f}; soft attention at 0.5: "
                  f"P {p:.2f}, R {r:.2f}, F1 {f:.2f}."]
    return "\n".join(lines + learning_curve(home) + ablation_table(home)) + "\n"


def learning_curve(home: Path) -> list[str]:
    """Dev metrics at every evaluation of the final runs, mean over seeds, and the evaluation each seed kept."""
    path, board = home / "final" / "curves.parquet", home / "final" / "leaderboard.parquet"
    if not (path.is_file() and board.is_file()):
        return []
    curves = pd.read_parquet(path)
    kept = pd.read_parquet(board).dropna(subset=["best_step"])
    chosen = {int(step): sorted(int(s) for s in group["seed"]) for step, group in kept.groupby("best_step")}
    lines = ["", "Learning curve (dev, mean over seeds; the paper checked dev sentence F1 every 500 steps):", "",
             "| epoch | step | sent F1 | tok P @0.5 | tok R @0.5 | tok F1 @0.5 | tok F1 @dev-cal | MAP "
             "| kept by seeds |",
             "|" + "---|" * 9]
    for step, group in curves.groupby("step"):
        cells = [_cell(group[f"dev/{c}"]) for c in ("sent_f1", "tok_precision", "tok_recall", "tok_f1",
                                                     "tok_cal_f1", "tok_map")]
        seeds = ", ".join(map(str, chosen.get(int(step), []))) or ""
        lines.append(f"| {group['epoch'].iloc[0]:.2f} | {int(step)} | " + " | ".join(cells) + f" | {seeds} |")
    return lines


def ablation_table(home: Path) -> list[str]:
    """The ablation grid on dev at 0.5 (every run has dev metrics), best dev sentence F1 first."""
    path = home / "ablation" / "leaderboard.parquet"
    if not path.is_file():
        return []
    board = pd.read_parquet(path)
    runs = board[(board["method"] != "random") & board["dev/sent_f1"].notna()]
    if runs.empty:
        return []
    grouped = runs.groupby(list(ABLATED), dropna=False)
    rows = sorted(grouped, key=lambda kv: -kv[1]["dev/sent_f1"].mean())
    lines = ["", f"Ablation ({len(runs)} runs, {runs['seed'].nunique()} seed(s), "
             f"{int(runs['num_train_epochs'].iloc[0])} epoch(s), `ablation.yaml`): dev at 0.5, "
             "best dev sentence F1 first (the final takes the first row's settings)", "",
             "| square | zero_delta | attend_sep | sentence_loss | sent F1 | tok P | tok R | tok F1 | tok F1 @dev-cal "
             "| MAP | corr |",
             "|" + "---|" * 11]
    for key, group in rows:
        cells = [_cell(group[f"dev/{c}"]) for c in ("sent_f1", "tok_precision", "tok_recall", "tok_f1",
                                                    "tok_cal_f1", "tok_map", "tok_corr")]
        lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + " |")
    return lines


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, {gpu}"


def stage_minutes(out: Path) -> float:
    """The wall time of every stage command so far (commands.log), in minutes."""
    log = out / "commands.log"
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    return sum(float(line.split("\t")[1].rstrip("s")) for line in lines) / 60


def write_tables(out: Path, tasks: list[str], preset: dict) -> None:
    stamp = provenance(shlex.join(["python", "bench/quality.py", *sys.argv[1:]]))
    versions = ", ".join(f"{k.removeprefix('version_')} {v}" for k, v in stamp.items() if k.startswith("version_"))
    head = [f"`{stamp['command']}` on {stamp['created_at'][:10]}, git {stamp['git_sha'][:10]}, {machine()}; "
            f"{versions}. "
            f"Stage commands: {stage_minutes(out):.1f} min of wall time in all (`{out.name}/commands.log`).", "",
            f"Preset: `{json.dumps(preset)}`", ""]
    tables = [(out / t / "table.md").read_text(encoding="utf-8") for t in tasks if (out / t / "table.md").is_file()]
    (out / "tables.md").write_text("\n".join(head + tables), encoding="utf-8")
    rows = {t: method_rows(t, out / t, preset) for t in tasks if (out / t).is_dir()}
    (out / "quality.json").write_text(json.dumps({"provenance": stamp, "preset": preset, "rows": rows},
                                                 indent=1, default=float), encoding="utf-8")
