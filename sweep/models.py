"""A model named on a command line, resolved to what can be loaded: a sweep.run checkpoint, a sweep output
folder (its kept checkpoints, best first), a Hugging Face encoder folder, or a built-in name."""
from __future__ import annotations

from pathlib import Path

from sweep.leaderboard import FINISHED
from zs_core.checkpoint import CONFIG_FILE, is_checkpoint, load_checkpoint
from zs_core.encoders import BUILTIN, load_encoder, load_tokenizer
from zs_core.errors import InputError, error_line
from zs_core.protocol import DEFAULT_METRIC, rank_key, selection_rule

BOARD, SWEEP_YAML = "leaderboard.parquet", "sweep.yaml"


def sweep_selection(folder: Path) -> tuple[str, str]:
    """(metric, mode) a sweep folder's trials were ranked by (its sweep.yaml), dev sentence F1 by default."""
    from sweep.yamlfile import read_yaml

    try:
        tune = read_yaml(folder / SWEEP_YAML).get("tune") or {}
        return str(tune.get("metric", DEFAULT_METRIC)), str(tune.get("mode", "max"))
    except (InputError, AttributeError):  # no sweep.yaml, or not one of ours: the default rule
        return DEFAULT_METRIC, "max"


def kept_checkpoints(folder: Path) -> list[Path]:
    """A sweep folder's kept checkpoints, best first by the sweep's rule: the leaderboard's finished trials'
    ``checkpoint`` paths (as recorded, relative to the folder, or found below it by trial id), else every
    checkpoint below the folder."""
    import pandas as pd

    found: list[Path] = []
    board = folder / BOARD
    if board.is_file():
        try:
            frame = pd.read_parquet(board)
        except (OSError, ValueError) as err:
            raise InputError(f"{board}: cannot be read as Parquet ({error_line(err)})") from None
        if "checkpoint" in frame:
            rule = selection_rule(*sweep_selection(folder))
            finished = frame["status"].isin(FINISHED) if "status" in frame else True
            rows = frame[frame["checkpoint"].notna() & finished].to_dict("records")
            for row in sorted(rows, key=lambda r: rank_key(rule, r), reverse=True):
                found.extend(_recorded(folder, row))
    if not found:
        found = sorted(p.parent for p in folder.rglob(CONFIG_FILE) if is_checkpoint(p.parent))
    return list(dict.fromkeys(p.resolve() for p in found))


def _recorded(folder: Path, row: dict) -> list[Path]:
    path = Path(str(row["checkpoint"]))
    for candidate in (path, folder / path):
        if is_checkpoint(candidate):
            return [candidate]
    return [f.parent for f in sorted(folder.rglob(CONFIG_FILE))
            if str(row.get("trial_id")) in str(f) and is_checkpoint(f.parent)][:1]


def best_checkpoint(folder: Path) -> Path | None:
    """A sweep folder's best kept checkpoint (None when it kept none)."""
    kept = kept_checkpoints(folder)
    return kept[0] if kept else None


def checkpoint_of(name: str, trial: str | None = None) -> str:
    """A model named on a command line, with a sweep output folder resolved to one checkpoint: its best kept
    one (the sweep's own rule), or with ``trial`` (a trial id, as the leaderboard shows it) that trial's. A
    checkpoint, an encoder folder or a built-in name is returned as it is."""
    path = Path(name).expanduser()
    if name in BUILTIN or is_checkpoint(path) or (path / "config.json").is_file() or not path.is_dir():
        if trial is not None:
            raise InputError(f"--trial {trial}: goes with a sweep output folder; {name} is not one")
        return name
    kept = kept_checkpoints(path)
    if not kept:
        raise InputError(f"{name}: no kept checkpoint in this folder; expected a sweep.run output folder "
                         f"(leaderboard.parquet and the checkpoints of its top tune.keep_top_k trials)")
    if trial is None:
        return str(kept[0])
    from sweep.leaderboard import model_label

    chosen = [k for k in kept if model_label(str(k)) == trial]
    if not chosen:
        raise InputError(f"--trial {trial}: {name} kept no checkpoint of that trial; it kept "
                         f"{', '.join(model_label(str(k)) for k in kept)}")
    return str(chosen[0])


def resolve_models(names: list[str]) -> dict[str, str]:
    """{absolute path or built-in name: the name shown in the table}, in the order given; a sweep folder
    gives all its kept checkpoints."""
    out: dict[str, str] = {}
    for name in names:
        path = Path(name).expanduser()
        if name in BUILTIN:
            out.setdefault(name, name)
        elif is_checkpoint(path) or (path / "config.json").is_file():
            out.setdefault(str(path.resolve()), name)
        elif path.is_dir() and (kept := kept_checkpoints(path)):
            for ckpt in kept:
                out.setdefault(str(ckpt), str(ckpt))
        else:
            raise InputError(f"{name}: not a model: expected a sweep.run checkpoint, a sweep output folder with "
                             f"kept checkpoints, a Hugging Face model folder or one of {', '.join(BUILTIN)}")
    return out


def load_any(path: str, attentions: bool = False):
    """-> (encoder, tokenizer, classifier or None, RunConfig or None) of a checkpoint, encoder folder or name."""
    try:
        if is_checkpoint(path):
            model, tokenizer, cfg = load_checkpoint(path, attentions=attentions)
            return model.encoder, tokenizer, model, cfg
        return load_encoder(path, attentions=attentions), load_tokenizer(path), None, None
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise InputError(f"{path}: cannot be loaded ({error_line(err)})") from None
