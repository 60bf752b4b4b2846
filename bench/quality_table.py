"""bench/quality.py's tables: per task, what each selection rule picks for each zero-shot head (test token metrics,
mean ± std over seeds, beside the oracle), the comparison that chose each head's initializer, the other methods
(random, the encoder's heads, LIME, the supervised ceiling), and the learning curves as a picture."""
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
from zs_core.protocol import (
    DEV,
    DEV_CALIBRATED,
    LOSS,
    MAX_POOL,
    N_SENTENCES,
    RANDOM,
    SENT_F1,
    SOFT_ATTENTION,
    TOK_F1,
    TOK_MAP,
    on_dev,
    on_test,
    rules_for,
    tok,
)

METRICS = ("precision", "recall", "f1", "cal_f1", "map")  # a row's token metrics: at 0.5, F1 dev-calibrated, MAP
HEADER = "| method | rule | n test | sent F1 | tok P @0.5 | tok R @0.5 | tok F1 @0.5 | tok F1 @dev-cal | MAP | epoch |"
# Bujel, Yannakoudakis & Rei (2021), FCE, roberta-base: token F1 per method; sentence F1 85.62
PAPER = {"fce": "the paper (roberta-base): soft attention @0.5 P 20.76, R 85.36, F1 33.31, sentence F1 85.62; "
                "Rei & Søgaard's 2018 BiLSTM F1 28.27 (MAP 48.5 in a public reproduction); Schmaltz (2021, "
                "zero-shot BERT-base) F1 42.48"}
LABEL = {SOFT_ATTENTION: "soft attention", MAX_POOL: "max pool", "supervised": "supervised ceiling"}


def _cell(values) -> str:
    values = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def chosen_initializer(compare: Path, head: str, headline: str) -> str:
    """The initializer whose trials of ``head`` have the best mean dev value of ``headline`` at that rule's
    pick (ties: the lower mean dev loss there); zero-shot, no token label decides."""
    picks = pd.read_parquet(compare / "rules.parquet")
    mine = picks[(picks["method"] == head) & (picks["rule_metric"] == headline)]
    means = mine.groupby("initializer_name")[[headline, on_dev(LOSS)]].mean()
    return str(means.sort_values([headline, on_dev(LOSS)], ascending=[False, True]).index[0])


def final_tables(home: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rules.parquet, leaderboard.parquet) of every final sweep of a task (final, or final_HEAD per head),
    each row with its sweep's folder name; empty frames before any has finished."""
    picks, boards = [], []
    for folder in sorted(p for p in home.glob("final*") if p.is_dir()):
        for name, into in (("rules.parquet", picks), ("leaderboard.parquet", boards)):
            frame = _read(folder / name)
            if frame is not None:
                into.append(frame.assign(sweep=folder.name))
    return (pd.concat(picks, ignore_index=True) if picks else pd.DataFrame(columns=["method", "rule"]),
            pd.concat(boards, ignore_index=True) if boards else pd.DataFrame(columns=["method"]))


def final_curves(home: Path) -> pd.DataFrame | None:
    """curves.parquet of every final sweep, each row with its trial's method and its sweep's folder name."""
    frames = []
    for folder in sorted(p for p in home.glob("final*") if p.is_dir()):
        curves, picks = _read(folder / "curves.parquet"), _read(folder / "rules.parquet")
        if curves is not None and picks is not None:
            methods = picks.drop_duplicates("trial_id").set_index("trial_id")["method"]
            frames.append(curves.assign(method=curves["trial_id"].map(methods), sweep=folder.name))
    return pd.concat(frames, ignore_index=True) if frames else None


def final_runs(picks: pd.DataFrame, home: Path, preset: dict) -> list[tuple[str, str, str]]:
    """(sweep, head, label) of every head in every final sweep: soft attention, max pool, then the preset's
    variants (final_NAME), each labelled by what it changes, e.g. "max pool, max_pool_reduce: logsumexp"."""
    runs = []
    for sweep, head in picks[["sweep", "method"]].drop_duplicates().itertuples(index=False) if len(picks) else ():
        name = sweep.removeprefix("final").removeprefix("_")
        changed = preset.get("variants", {}).get(home.name, {}).get(name, {})
        extra = (", ".join(f"{k}: {v}" for k, v in changed.items() if k != "zero_shot_head")
                 or name.removeprefix(head).removeprefix("_"))
        label = f"{LABEL[head]}, {extra}" if extra else LABEL[head]
        runs.append((bool(extra), head != SOFT_ATTENTION, sweep, head, label))
    return [run[2:] for run in sorted(runs)]


def rule_rows(picks: pd.DataFrame, head: str, label: str | None = None) -> list[dict]:
    """One row per selection rule of ``head``: test metrics (a list over seeds) of the evaluations it picks."""
    rows = []
    for rule in rules_for(head) if len(picks) else ():
        mine = picks[(picks["method"] == head) & (picks["rule"] == rule.name)].sort_values("seed")
        if mine.empty:
            continue
        values = {m: list(mine.get(on_test(tok(m)), [])) for m in METRICS}
        values[SENT_F1] = list(mine.get(on_test(SENT_F1), []))
        rows.append({"method": label or LABEL[head], "rule": rule.name, "oracle": rule.oracle, "values": values,
                     "epoch": list(mine["epoch"]), "seeds": len(mine),
                     "n": int(mine[on_test(N_SENTENCES)].iloc[0]) if on_test(N_SENTENCES) in mine else None})
    return rows


def method_rows(home: Path, preset: dict) -> list[dict]:
    """Every row of a task's table, for whatever stages have finished."""
    rows = []
    heads = _read(home / "heads_test" / "heads.parquet")
    if heads is not None:
        random = heads[(heads["method"] == RANDOM) & (heads["threshold_kind"] == DEV_CALIBRATED)].head(1)
        if len(random):
            rows.append({"method": "random", "rule": "@dev-cal", "n": int(random[N_SENTENCES].iloc[0]),
                         "values": {m: [float(random["f1" if m == "cal_f1" else m].iloc[0])] for m in METRICS
                                    if m not in ("precision", "recall", "f1")}})
    picks = final_tables(home)[0]
    for sweep, head, label in final_runs(picks, home, preset):
        rows += rule_rows(picks[picks["sweep"] == sweep], head, label)
    untrained = preset["model"]
    for model, label in (("trained", "best head, fine-tuned"), (untrained, f"best head, untrained {untrained}")):
        head = best_head(home, model, untrained)
        if head is not None:
            rows.append({"method": f"{label} (L{head['layer']} H{head['head']} {head['pooling']})",
                         "rule": "dev MAP", "n": int(head[N_SENTENCES]),
                         "values": {"cal_f1": [head["f1"]], "map": [head["map"]]}})
    for name, label in (("lime", "LIME"), ("own_sample", "the head's own scores"), ("random_sample", "random")):
        path = home / "preds" / name / "metrics.json"
        if path.is_file():
            row = next(r for r in json.loads(path.read_text())["rows"] if r["threshold_kind"] == DEV_CALIBRATED)
            rows.append({"method": f"{label}, LIME's sample", "rule": "@dev-cal", "n": preset["lime_sample"],
                         "values": {"cal_f1": [row["f1"]], "map": [row["map"]]}})
    ceiling = _read(home / "ceiling" / "leaderboard.parquet")
    if ceiling is not None:
        done = ceiling[(ceiling["method"] != RANDOM) & ceiling[on_test(TOK_F1)].notna()]
        rows.append({"method": "supervised ceiling", "rule": "oracle: dev token F1 (supervised)",
                     "n": int(done[on_test(N_SENTENCES)].iloc[0]) if len(done) else None, "seeds": len(done),
                     "values": {m: list(done[on_test(tok(m))]) for m in METRICS}, "epoch": list(done["best_epoch"])})
    return rows


def best_head(home: Path, model: str, untrained: str) -> dict | None:
    """The test row of the head with the best dev MAP; ``model``: the untrained encoder's name or "trained"."""
    dev, test = _read(home / "heads_dev" / "heads.parquet"), _read(home / "heads_test" / "heads.parquet")
    if dev is None or test is None:
        return None
    pick = (lambda f: f["model"] == untrained) if model == untrained else (lambda f: f["model"] != untrained)
    dev = dev[pick(dev) & (dev["method"] == "head")]
    if dev.empty:
        return None
    top = dev.sort_values("map", ascending=False).iloc[0]
    test = test[pick(test) & (test["layer"] == top["layer"]) & (test["head"] == top["head"])
                & (test["pooling"] == top["pooling"])]
    return {**test.iloc[0].to_dict(), "layer": int(top["layer"]), "head": int(top["head"])}


def compare_lines(home: Path, headline: str) -> list[str]:
    """The cheap comparison: per head and initializer, the headline rule's dev value (what chose) and the
    test metrics of its picks (what it cost, for the reader only)."""
    picks = _read(home / "compare" / "rules.parquet")
    if picks is None:
        return []
    lines = ["", f"Comparison ({_budget(home / 'compare')}): each head's initializer is the one with the best mean "
             f"dev `{headline}` at that rule's pick (no token label chooses); test at the same picks:", "",
             "| head | initializer | seeds | dev words-sent F1 | test tok F1 @0.5 | test tok F1 @dev-cal | test MAP |",
             "|---|---|---|---|---|---|---|"]
    mine = picks[picks["rule_metric"] == headline]
    for (head, init), group in mine.groupby(["method", "initializer_name"], sort=True):
        cells = [_cell(group[c]) for c in (headline, on_test(TOK_F1), on_test(tok("f1", True)), on_test(TOK_MAP))]
        lines.append(f"| {LABEL.get(head, head)} | {init} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def _budget(folder: Path) -> str:
    import yaml

    path = folder / "sweep.yaml"
    if not path.is_file():
        return folder.name
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    data, fixed = doc.get("data", {}), doc.get("fixed", {})
    cut = data.get("limit") or data.get("sample") or {}
    train = f"{cut['train']} train sentences" if "train" in cut else "all train sentences"
    return f"{train}, {fixed.get('num_train_epochs')} epochs, dev every {fixed.get('eval_steps')} steps"


def task_table(task: str, home: Path, preset: dict) -> str:
    from quality import HEADLINE  # bench/ is on sys.path

    finals = sorted(p for p in home.glob("final*") if p.is_dir())
    lines = [f"### {task}", "", f"Test set; rows per zero-shot head and selection rule (oracle_* use dev token "
             f"labels); the headline rule is `{HEADLINE}`. Finals: "
             + "; ".join(f"`{f.name}` {_budget(f)}" for f in finals), "", HEADER, "|" + "---|" * 10]
    for row in method_rows(home, preset):
        seeds = f" ({row['seeds']} seeds)" if row.get("seeds", 0) > 1 else ""
        cells = [_cell(row["values"].get(SENT_F1, []))] + [_cell(row["values"].get(m, [])) for m in METRICS]
        epoch = f"{np.mean(row['epoch']):.2f}" if row.get("epoch") else "–"
        rule = f"**{row['rule']}**" if row.get("rule") == HEADLINE.removeprefix(DEV) else row["rule"]
        lines.append(f"| {row['method']}{seeds} | {rule} | {row.get('n') or '–'} | " + " | ".join(cells)
                     + f" | {epoch} |")
    if task in PAPER:
        lines += ["", f"Anchors: {PAPER[task]}."]
    picture = plot_curves(home, home / "curves.png", preset)
    if picture:
        lines += ["", f"Learning curves: `{picture.name}` (dev, mean over seeds, each rule's picks marked)."]
    return "\n".join(lines + compare_lines(home, HEADLINE)) + "\n"


def plot_curves(home: Path, path: Path, preset: dict) -> Path | None:
    """sweep.report_plots.rules_figure of the finals, one panel per head and final sweep, written to ``path``."""
    from sweep.heatmap import pyplot
    from sweep.report_plots import rules_figure

    curves, picks = final_curves(home), final_tables(home)[0]
    if curves is None:
        return None
    runs = [(f"{home.name}: {label}", curves[(curves["sweep"] == sweep) & (curves["method"] == head)],
             picks[(picks["sweep"] == sweep) & (picks["method"] == head)])
            for sweep, head, label in final_runs(picks, home, preset)
            if ((curves["sweep"] == sweep) & (curves["method"] == head)).any()]
    fig = rules_figure(runs)
    fig.savefig(path, dpi=90)
    pyplot().close(fig)
    return path


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
    rows = {t: method_rows(out / t, preset) for t in tasks if (out / t).is_dir()}
    (out / "quality.json").write_text(json.dumps({"provenance": stamp, "preset": preset, "rows": rows},
                                                 indent=1, default=float), encoding="utf-8")

