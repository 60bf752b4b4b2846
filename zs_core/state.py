"""Where a training run stands at a dev evaluation: what a checkpoint stores to resume it (zs_core.checkpoint
writes it, zs_core.train fills and reads it)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainState:
    """Enough to go on from a dev evaluation exactly (with the model's weights, saved beside it): optimizer
    steps done, the epoch and the batches of it done, the optimizer's and scheduler's state, the run's RNG
    states (dropout, word masking), each selection rule's pick so far (its evaluation's metrics) and how many
    evaluations ago the run's own rule picked. Plain
    values and tensors: ``torch.save`` / ``torch.load(weights_only=True)`` round-trip it."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    optimizer: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)
    picks: dict = field(default_factory=dict)
    stale: int = 0  # dev evaluations since the selection rule's pick (early stopping)
