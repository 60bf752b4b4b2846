"""The report's pictures as PNG data URIs: the learning curves of the top trials and the heads heatmap."""
from __future__ import annotations

import base64
import io
import math
import tempfile
from pathlib import Path

import pandas as pd

from sweep.heatmap import pyplot
from zs_core.protocol import DELETION, DEV, LOSS, SENT_F1, TOK_F1, TOK_MAP, TRAIN_LOSS, WORDS_SENT_F1, on_dev

TOP_CURVES = 5
def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig) -> str:
    plt = pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return png_uri(buffer.getvalue())


def heatmap_uri(folder: Path, frame: pd.DataFrame) -> str:
    """heads.png of a head-scan folder, or the same picture drawn from heads.parquet when it is missing."""
    from sweep.heatmap import plot_heads

    if (folder / "heads.png").is_file():
        return png_uri((folder / "heads.png").read_bytes())
    with tempfile.TemporaryDirectory(prefix="zs-report-") as tmp:
        return png_uri(plot_heads(frame, Path(tmp) / "heads.png").read_bytes())


def curves_uri(curves: pd.DataFrame, trial_ids: list[str], metric: str, baseline: float | None) -> str | None:
    """Dev ``metric`` and train loss per epoch of the given trials (best first); None when nothing to draw."""
    plt = pyplot()
    shown = [t for t in trial_ids if t in set(curves["trial_id"])][:TOP_CURVES]
    if not shown or "epoch" not in curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    panels = ((axes[0], metric, f"dev: {metric}"), (axes[1], TRAIN_LOSS, "train loss"))
    for trial_id in shown:
        part = curves[curves["trial_id"] == trial_id].sort_values("epoch")
        seed = part["seed"].iloc[0] if "seed" in part else None
        label = trial_id if seed is None or pd.isna(seed) else f"{trial_id} (seed {int(seed)})"
        for ax, column, _ in panels:
            if column in part:
                ax.plot(part["epoch"], part[column], marker="o", label=label)
    if baseline is not None and pd.notna(baseline):
        axes[0].axhline(baseline, color="grey", linestyle="--", label="random baseline")
    epochs = list(range(1, math.ceil(curves["epoch"].max()) + 1))  # evaluations may fall between epochs
    for ax, _, title in panels:
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return figure_uri(fig)


CURVE_KEYS = ((SENT_F1, "dev sentence F1"), (WORDS_SENT_F1, "dev words' sentence F1"),
              (DELETION, "dev deletion (P drop, top word vs random)"), (TOK_F1, "ORACLE dev token F1 @0.5"),
              (TOK_MAP, "ORACLE dev MAP"))


def rules_figure(runs: list[tuple[str, pd.DataFrame, pd.DataFrame | None]]):
    """One panel per (title, curves, rule picks): dev sentence F1, the words' sentence F1, the deletion check (where
    the run measured it) and the oracle's token F1 and MAP against steps (mean over the trials), dev loss on the
    right axis, and where each zero-shot rule picked in each trial, marked on the token F1 curve: when the token
    scores form and what each rule keeps."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False, layout="constrained")
    for ax, (title, curves, picks) in zip(axes[0], runs):
        mean = curves.groupby("step")[[c for c in curves.columns if c.startswith(DEV)]].mean(numeric_only=True)
        for key, label in CURVE_KEYS:
            if on_dev(key) in mean and mean[on_dev(key)].notna().any():
                ax.plot(mean.index, mean[on_dev(key)], label=label, linestyle="--" if "ORACLE" in label else "-")
        if on_dev(LOSS) in mean:
            right = ax.twinx()
            right.plot(mean.index, mean[on_dev(LOSS)], color="grey", linewidth=0.8)
            right.set_ylabel("dev loss (grey)")
        zero_shot = [] if picks is None else list(dict.fromkeys(picks[~picks["oracle"].astype(bool)]["rule"]))
        for i, rule in enumerate(zero_shot):
            steps = picks[picks["rule"] == rule]["step"]
            ys = [mean[on_dev(TOK_F1)].get(s, float("nan")) if on_dev(TOK_F1) in mean else 0.0 for s in steps]
            ax.scatter(steps, ys, marker="ov^sPD"[i % 6], s=45, zorder=5, label=f"picked by {rule}")
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def rules_uri(curves: pd.DataFrame, picks: pd.DataFrame | None) -> str | None:
    """``rules_figure`` of a sweep, one panel per method, as a PNG data URI (None without word-score curves)."""
    if "step" not in curves or on_dev(TOK_F1) not in curves or picks is None or "method" not in picks:
        return None
    runs = []
    for method in dict.fromkeys(picks["method"]):
        trials = set(picks[picks["method"] == method]["trial_id"])
        runs.append((method, curves[curves["trial_id"].isin(trials)], picks[picks["method"] == method]))
    return figure_uri(rules_figure(runs)) if runs else None
