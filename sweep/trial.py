"""The Tune trainable (a thin loop around zs_core.train) and the test evaluation of kept checkpoints."""
from __future__ import annotations

import math
import os
import posixpath
import sys
import tempfile
from typing import Any

import torch

from sweep.common import quiet_libraries
from zs_core.batching import encode
from zs_core.checkpoint import STATE_FILE, load_checkpoint, load_train_state, save_checkpoint
from zs_core.config import build_config
from zs_core.data import Sentence
from zs_core.encoders import freeze_layers, load_tokenizer, pick_device
from zs_core.errors import InputError, error_line
from zs_core.model import build_model
from zs_core.protocol import RULE_NAMES, TRUNCATED, model_method, on_test, rules_for, selection_rule
from zs_core.state import TrainState
from zs_core.train import NonFiniteLoss, evaluate, train

SEED_INDEX = "__trial_index__"  # set by Tune's Repeater: which of the sweep's seeds this trial runs
BEST_AT = "best_at_step"  # Tune's checkpoint score: the step of an improvement, -1 otherwise (keeps the best)


def trial_config(config: dict[str, Any], fixed: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Any]:
    """Fixed settings + this trial's sampled values + its seed, as one flat config."""
    flat = {**fixed, **{k: v for k, v in config.items() if not k.startswith("__")}}
    if "seed" not in config:
        flat["seed"] = seeds[int(config.get(SEED_INDEX, 0)) % len(seeds)]
    return flat


def use_trial_threads() -> None:
    """Torch threads = the CPUs Ray gave this trial (Ray also sets OMP_NUM_THREADS to that number)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def train_trial(config: dict[str, Any], splits: dict[str, list[Sentence]], fixed: dict[str, Any],
                seeds: tuple[int, ...], metric: str, mode: str, rules: tuple[str, ...] = RULE_NAMES,
                board=None) -> None:
    """One configuration and seed: train, report each dev evaluation with a checkpoint of the latest state.

    Every checkpoint holds the model and, to resume the run, its TrainState (with each rule's pick so far);
    Tune keeps the best one by the sweep's metric (``BEST_AT``: the step when the evaluation became the
    metric's pick, -1 otherwise) and the latest. The selection rules named in ``rules`` are tracked too, and
    their picks scored on test inside the trial (zs_core.train). A retried trial, or an unfinished one after
    ``--resume``, goes on from its latest checkpoint (``tune.get_checkpoint()``), so on CPU it ends with an
    uninterrupted run's numbers. A NaN or infinite loss ends the trial with one report carrying ``nan_loss: 1``.
    With ``board`` (sweep.progress), the trial posts its steps there for the driver's progress lines.
    """
    import ray
    from ray import tune

    use_trial_threads()
    quiet_libraries()
    device = pick_device()
    # where it ran: torch's device comes from torch, not from the GPUs Ray granted (gpu_ids)
    node = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "device": device,
            "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids())}
    cfg = build_config(trial_config(config, fixed, seeds), "trial config")
    tokenizer = load_tokenizer(cfg.model.model_name)
    model, state = resume_point(tune.get_checkpoint())
    if model is None:
        model = build_model(cfg.model, cfg.train.seed)
    selection = selection_rule(metric, mode)
    tracked = [r for r in rules_for(model_method(cfg.model)) if r.name in rules and r.name != selection.name]
    on_step = None
    if board is not None:
        from sweep.progress import poster

        on_step = poster(board, tune.get_context().get_trial_id())
    try:
        for metrics in train(cfg, model, tokenizer, splits, device, state, selection, tracked,
                             score_test=bool(tracked), on_step=on_step):
            best = state.picks[selection.name]
            metrics = {**metrics, **node, "nan_loss": 0, "best_epoch": best["epoch"], "best_step": best["step"],
                       "best_value": best.get(metric, math.nan),
                       BEST_AT: metrics["step"] if best["step"] == metrics["step"] else -1}
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(os.path.join(tmp, "model"), model, tokenizer, cfg, state=state)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(os.path.join(tmp, "model")))
    except NonFiniteLoss as err:
        tune.report({metric: float("nan"), **node, "nan_loss": 1, "nan_error": str(err)})


def resume_point(checkpoint) -> tuple[Any, TrainState]:
    """(model with the latest whole checkpoint's weights, its TrainState), or (None, a fresh state).

    Tune names the checkpoint its last saved state knew. A driver killed while Tune deleted that one (it deletes
    the previous latest once the next is logged) leaves it part-deleted; the trial then goes on from the next
    whole one in its folder (logged already), else from an earlier whole one, else from the start. (A folder gone
    whole, Tune would not restore at all: sweep.statuses puts an empty one in its place first.)
    """
    if checkpoint is None:
        return None, TrainState()
    for candidate in resume_candidates(checkpoint):
        try:
            with candidate.as_directory() as folder:
                state = load_train_state(folder)
                if state is None:
                    raise InputError(f"no {STATE_FILE}")
                model, _, saved = load_checkpoint(folder)
                # the layers build_model froze stay frozen: the optimizer's saved state holds the trainable ones only
                freeze_layers(model.encoder, saved.model.freeze_bert_layers_up_to)
                return model, state
        except Exception as err:  # noqa: BLE001 - whatever stops it loading, it is not a whole checkpoint
            print(f"{candidate.path}: not a whole checkpoint to go on from ({error_line(err)})", file=sys.stderr)
    return None, TrainState()


def resume_candidates(checkpoint) -> list:
    """Tune's named checkpoint, then its trial's newer checkpoints (oldest first), then its older ones."""
    import pyarrow.fs
    from ray import tune

    parent, name = posixpath.split(checkpoint.path.rstrip("/"))
    try:
        found = checkpoint.filesystem.get_file_info(pyarrow.fs.FileSelector(parent))
    except OSError:
        found = []
    named = checkpoint_index(name)
    others = sorted((index, info.path) for info in found if info.type == pyarrow.fs.FileType.Directory
                    and info.base_name != name and (index := checkpoint_index(info.base_name)) >= 0)
    order = [path for i, path in others if i > named] + [path for i, path in reversed(others) if i < named]
    return [checkpoint] + [tune.Checkpoint(path=path, filesystem=checkpoint.filesystem) for path in order]


def checkpoint_index(name: str) -> int:
    """checkpoint_000006 -> 6; -1 for any other name."""
    prefix, _, number = name.partition("_")
    return int(number) if prefix == "checkpoint" and number.isdigit() else -1


def evaluate_on_test(checkpoint, splits: dict[str, list[Sentence]], threshold: float | None) -> dict[str, float]:
    """A kept checkpoint (a tune.Checkpoint, local or in remote storage) on test.

    Token metrics at importance_threshold (0.5 unless configured) and tok_cal_* at dev's calibrated
    ``threshold``; sentence metrics at 0.5.
    """
    use_trial_threads()
    quiet_libraries()
    with checkpoint.as_directory() as folder:
        model, tokenizer, cfg = load_checkpoint(folder)
    device = pick_device()
    model.to(device)
    items, truncated = encode(splits["test"], tokenizer, cfg.data.max_seq_length, lowercase=cfg.data.lowercase)
    if threshold is not None and not math.isfinite(threshold):
        threshold = None
    metrics = evaluate(model, items, splits["test"], tokenizer, cfg, device, threshold, calibrate=False)
    metrics[TRUNCATED] = truncated
    return {on_test(k): v for k, v in metrics.items()}
