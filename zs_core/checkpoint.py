"""Checkpoints: the encoder as a Hugging Face folder (safetensors), the head as safetensors, config JSON.

Layout of a checkpoint folder:
  encoder/      config.json, model.safetensors, tokenizer files: usable on its own as an encoder folder
  head.safetensors
  zs_config.json  the run's full flat config
  train_state.pt  (a trial's latest state only) where training stands, to resume it: zs_core.state.TrainState
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.config import RunConfig, build_config
from zs_core.encoders import check_vocabulary, load_encoder, load_tokenizer
from zs_core.errors import InputError, error_line
from zs_core.files import atomic_path
from zs_core.model import ZeroShotClassifier
from zs_core.state import TrainState

CONFIG_FILE = "zs_config.json"
HEAD_FILE = "head.safetensors"
STATE_FILE = "train_state.pt"


def save_checkpoint(folder: str | Path, model: ZeroShotClassifier, tokenizer: PreTrainedTokenizerBase,
                    cfg: RunConfig, extra: dict | None = None, state: TrainState | None = None) -> Path:
    """Write to ``folder`` through a temporary sibling and a rename, so a reader never sees half of it;
    with ``state`` also what resuming the run needs (``STATE_FILE``)."""
    with atomic_path(folder) as tmp:
        model.encoder.save_pretrained(tmp / "encoder", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "encoder")
        head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
        save_file(head, str(tmp / HEAD_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps({"config": cfg.flat(), **(extra or {})}, indent=2))
        if state is not None:
            torch.save({"state": dataclasses.asdict(state)}, tmp / STATE_FILE)
    return Path(folder)


def load_train_state(folder: str | Path) -> TrainState | None:
    """The TrainState of a checkpoint that holds one, else None; read with weights_only."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    return TrainState(**torch.load(path, weights_only=True)["state"])


def is_checkpoint(folder: str | Path) -> bool:
    return (Path(folder) / CONFIG_FILE).is_file() and (Path(folder) / HEAD_FILE).is_file()


def load_checkpoint(folder: str | Path, attentions: bool = False):
    """-> (model in eval mode, tokenizer, RunConfig). The model's outputs equal those before saving."""
    folder = Path(folder)
    if not is_checkpoint(folder):
        raise InputError(f"{folder}: not a zs-sweep checkpoint (expected {CONFIG_FILE} and {HEAD_FILE})")
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        flat = meta.get("config") if isinstance(meta, dict) else None
        if not isinstance(flat, dict):
            raise TypeError("expected a mapping with a 'config' mapping")
    except (ValueError, KeyError, TypeError) as err:  # not JSON, not UTF-8, no config mapping
        raise InputError(f"{folder / CONFIG_FILE}: not a zs-sweep config ({error_line(err)})") from None
    cfg = build_config(flat, str(folder / CONFIG_FILE))
    encoder = load_encoder(str(folder / "encoder"), attentions=attentions)
    with torch.random.fork_rng(devices=[]):  # the head's init draws are overwritten; keep the caller's RNG
        model = ZeroShotClassifier(encoder, cfg.model)
    try:  # a head saved before the ceiling's pos_weight buffer existed keeps its default (1.0: unweighted)
        missing, unexpected = model.head.load_state_dict(load_file(str(folder / HEAD_FILE)), strict=False)
    except (RuntimeError, SafetensorError, OSError) as err:  # another architecture's head, a truncated file
        raise InputError(f"{folder / HEAD_FILE}: does not fit the head {CONFIG_FILE} describes "
                         f"({error_line(err)})") from None
    if unexpected or set(missing) - {"pos_weight"}:
        raise InputError(f"{folder / HEAD_FILE}: does not fit the head {CONFIG_FILE} describes "
                         f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})")
    model.eval()
    tokenizer = load_tokenizer(str(folder / "encoder"))
    check_vocabulary(tokenizer, encoder.config, str(folder / "encoder"))
    return model, tokenizer, cfg
