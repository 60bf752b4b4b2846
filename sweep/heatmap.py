"""heads.png: a layer x head heatmap of MAP, one panel per (model, pooling), the best head boxed; a panel
names its model by ``model_label`` (a checkpoint by its trial id)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweep.leaderboard import model_label
from zs_core.files import atomic_path


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no screen), imported when first drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_heads(frame: pd.DataFrame, path: str | Path, metric: str = "map") -> Path:
    """Draw every model's heads (rows with a layer) as layer (y) x head (x) grids of ``metric``.

    Written to a temporary name in the same folder, then renamed.
    """
    plt = pyplot()
    heads = frame[frame["layer"].notna()]
    models = list(dict.fromkeys(heads["model"]))
    poolings = list(dict.fromkeys(heads["pooling"]))
    if not models:
        raise ValueError("no head rows to plot")
    n_layers, n_heads = int(heads["layer"].max()) + 1, int(heads["head"].max()) + 1
    cell = 0.45 if n_heads <= 16 else 0.3
    fig, axes = plt.subplots(len(models), len(poolings), squeeze=False, layout="constrained",
                             figsize=(max(4.0, cell * n_heads + 2.0) * len(poolings),
                                      max(3.0, cell * n_layers + 1.5) * len(models)))
    vmin, vmax = float(heads[metric].min()), float(heads[metric].max())
    image = None
    for i, model in enumerate(models):
        for j, pooling in enumerate(poolings):
            ax = axes[i][j]
            part = heads[(heads["model"] == model) & (heads["pooling"] == pooling)]
            grid = np.full((n_layers, n_heads), np.nan)
            grid[part["layer"].astype(int), part["head"].astype(int)] = part[metric]
            image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
            _annotate(ax, grid, vmin, vmax)
            if part[metric].notna().any():
                best = part.loc[part[metric].idxmax()]
                layer, head = int(best["layer"]), int(best["head"])
                ax.add_patch(plt.Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5))
                title = f"{model_label(model)} | {pooling}\nbest L{layer} H{head}: {metric} {best[metric]:.3f}"
            else:
                title = f"{model_label(model)} | {pooling}"
            ax.set_title(title, fontsize=9)
            ax.set_xticks(range(n_heads))
            ax.set_yticks(range(n_layers))
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
    fig.colorbar(image, ax=axes, shrink=0.8, label=metric.upper())
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return Path(path)


def _annotate(ax, grid: np.ndarray, vmin: float, vmax: float) -> None:
    size = 7 if grid.shape[1] <= 12 else 5
    middle = (vmin + vmax) / 2
    for (layer, head), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(head, layer, f"{value:.2f}"[1:] if 0 <= value < 1 else f"{value:.1f}", ha="center",
                    va="center", fontsize=size, color="black" if value > middle else "white")
