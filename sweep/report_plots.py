"""The report's pictures as PNG data URIs: the learning curves of the top trials and the heads heatmap."""
from __future__ import annotations

import base64
import io
import math
import tempfile
from pathlib import Path

import pandas as pd

from sweep.heatmap import pyplot

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
    panels = ((axes[0], metric, f"dev: {metric}"), (axes[1], "train/loss", "train loss"))
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
