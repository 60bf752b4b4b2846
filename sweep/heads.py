"""python -m sweep.heads --model PATH [PATH ...]: every layer x head of every model, one Ray Tune trial each.

PATH: a sweep.run checkpoint, a sweep output folder (its kept checkpoints), a Hugging Face encoder folder or
a built-in name. Writes OUTPUT/heads.parquet and OUTPUT/heads.png and prints the top 10. Everything is
checked before Ray starts: bad input is one line and exit code 2, with nothing written.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sweep.common import (
    Parser,
    add_data_args,
    check_output_dir,
    cli,
    command_line,
    data_config_from_args,
    prog,
    provenance,
    quiet_libraries,
    start_line,
    start_ray,
)
from sweep.interrupt import graceful_stop, raise_if_interrupted, resume_command, stopped_at_once
from sweep.resources import fit_resources
from sweep.storage import has_tune_state
from zs_core.config import DataConfig
from zs_core.errors import InputError, error_line
from zs_core.protocol import HEAD, POOLINGS, RANDOM, ROW_KEYS, gives_word_scores, model_method

if TYPE_CHECKING:
    import pandas as pd

    from zs_core.data import Sentence

# torch, transformers, pandas and Ray are imported where used: --help and bad input answer at once.

ROWS_FILE = "rows.parquet"
COLUMNS = ("model", "split") + ROW_KEYS
SMOKE_SENTENCES = 32
PROGRESS_SECONDS = 10.0


def parser() -> Parser:
    p = Parser(prog=prog("heads"), description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", default=None, help="checkpoints, sweep folders, encoder folders or names")
    add_data_args(p)
    p.add_argument("--split", default="test", help="the split to report (thresholds come from dev)")
    p.add_argument("--pooling", nargs="+", default=list(POOLINGS), metavar="POOLING",
                   help=f"any of {', '.join(POOLINGS)} (default both; a comma-separated list works too)")
    p.add_argument("--output", default="runs/heads", help="folder for heads.parquet, heads.png and Tune's files")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--smoke-test", action="store_true", help=f"tiny-random, {SMOKE_SENTENCES} sentences per split")
    p.add_argument("--address", default=None, help="join a running Ray cluster (ray start --head)")
    p.add_argument("--dashboard-host", default="127.0.0.1", help="interface the Ray dashboard binds to")
    p.add_argument("--storage", default=None, help="Tune's result folder or URI (default OUTPUT/tune); on several "
                   "machines it must be shared (NFS, s3://, gs://): trials hand their rows back through it")
    p.add_argument("--resume", action="store_true", help="go on with an interrupted scan (its finished models kept)")
    return p


def parse_args(argv: list[str] | None):
    return parser().parse_args(argv)


def parse_poolings(given: list[str] | str) -> tuple[str, ...]:
    text = given if isinstance(given, str) else ",".join(given)
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in names if x not in POOLINGS]
    if bad or not names:
        raise InputError(f"--pooling {text!r}: unknown pooling {(bad or [''])[0]!r}; "
                         f"expected any of {', '.join(POOLINGS)}")
    return tuple(dict.fromkeys(names))


def probe(path: str, name: str, poolings: tuple[str, ...]) -> None:
    """Load the model and score one short sentence: it must return attention maps."""
    from sweep.models import load_any
    from zs_core.batching import encode
    from zs_core.data import Sentence
    from zs_core.scores import iter_head_scores

    encoder, tokenizer, _, _ = load_any(path, attentions=True)
    items, _ = encode([Sentence(("probe", "sentence"), (0.0, 1.0))], tokenizer, 16)
    try:
        next(iter_head_scores(encoder, items, tokenizer, 1, "cpu", poolings))
    except (ValueError, TypeError, RuntimeError, AttributeError) as err:
        raise InputError(f"{name}: {type(encoder).__name__} gives no attention outputs, so it has no heads to "
                         f"scan ({error_line(err)})") from None


def load_data(spec: DataConfig, split: str) -> dict[str, list[Sentence]]:
    """dev (for thresholds) and the reported split, both labelled and each with a positive token."""
    from zs_core.data import load_splits
    from zs_core.provenance import data_name

    if split not in ("train", "dev", "test"):
        raise InputError(f"--split {split!r}: no such split; expected one of train, dev, test")
    data = load_splits(spec, ("dev", split) if split != "dev" else ("dev",))
    where = data_name(spec)
    for name, sentences in data.items():
        if any(s.labels is None for s in sentences):
            raise InputError(f"{where}: the {name} split has no labels, so its heads cannot be scored")
    if not any(any(s.gold) for s in data["dev"]):
        raise InputError(f"{where}: the dev split has no positive token: no threshold can be calibrated")
    if not any(any(s.gold) for s in data[split]):
        raise InputError(f"{where}: the {split} split has no positive token: nothing to score")
    return data


def model_rows(path: str, name: str, data: dict[str, list[Sentence]], split: str, poolings: tuple[str, ...],
               batch_size: int, device_name: str = "cpu",
               progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """All rows of one model: every head, its soft-attention head (if any) and the random baseline."""
    from sweep.models import load_any
    from zs_core.evaluation import list_rows, method_rows, random_scores
    from zs_core.headscan import encode_in_chunks, scan_split
    from zs_core.scores import model_scores

    encoder, tokenizer, model, cfg = load_any(path, attentions=True)
    (model or encoder).to(device_name)
    max_len = cfg.data.max_seq_length if cfg else DataConfig().max_seq_length
    lowercase = bool(cfg and cfg.data.lowercase)
    golds = {k: [list(s.gold) for s in v] for k, v in data.items()}
    accumulators, items = {}, {}
    for part in dict.fromkeys(("dev", split)):
        items[part], cut = encode_in_chunks(data[part], tokenizer, max_len, lowercase)
        if cut:
            print(f"warning: {name}: {cut} words of {part} cut off by max_seq_length={max_len} score 0")
        step = None if progress is None else _counter(progress, part, len(items[part]))
        accumulators[part] = scan_split(encoder, tokenizer, items[part], golds[part], batch_size, device_name,
                                        poolings, on_batch=step)
    rows = method_rows(HEAD, accumulators[split], fixed=None, dev_thresholds=accumulators["dev"].calibrate())
    if model is not None and gives_word_scores(model_method(cfg.model)):
        dev_words = model_scores(model, items["dev"], tokenizer, batch_size, device_name).words
        words = model_scores(model, items[split], tokenizer, batch_size, device_name).words
        rows += list_rows(model_method(cfg.model), golds[split], words, dev=(golds["dev"], dev_words),
                          fixed=cfg.eval.importance_threshold, top_k=cfg.eval.top_count)
    rows += list_rows(RANDOM, golds[split], random_scores(data[split])[1],
                      dev=(golds["dev"], random_scores(data["dev"])[1]))
    return [{"model": name, "split": split, **row} for row in rows]


def _counter(progress: Callable[[str, int, int], None], part: str, total: int) -> Callable[[int], None]:
    """on_batch(n) -> progress(part, sentences done so far, total)."""
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress(part, done, total)

    return step


def heads_trial(config: dict, data: dict, split: str, poolings: tuple[str, ...], batch_size: int,
                names: dict[str, str]) -> None:
    """The Tune trainable: one model's rows, handed back as a checkpoint holding rows.parquet."""
    import pandas as pd
    from ray import tune

    from sweep.leaderboard import write_parquet
    from sweep.trial import use_trial_threads
    from zs_core.encoders import pick_device

    use_trial_threads()
    quiet_libraries()
    last = [0.0]

    def progress(part: str, done: int, total: int) -> None:
        if time.monotonic() - last[0] >= PROGRESS_SECONDS or done == total:
            last[0] = time.monotonic()
            tune.report({"scanning": part, "sentences": done, "of": total})

    rows = model_rows(config["model"], names[config["model"]], data, split, poolings, batch_size, pick_device(),
                      progress)
    frame = pd.DataFrame(rows)
    heads = frame[frame["method"] == HEAD]
    with tempfile.TemporaryDirectory() as tmp:
        write_parquet(frame, Path(tmp) / ROWS_FILE)
        tune.report({"scanning": "done", "heads": len(heads), "best_map": float(heads["map"].max())},
                    checkpoint=tune.Checkpoint.from_directory(tmp))


def run_trials(names: dict[str, str], data: dict, args, poolings: tuple[str, ...], output: Path):
    """One trial per model on Ray Tune; -> (rows of the finished models, [error lines])."""
    import pandas as pd
    from ray import tune

    from sweep.progress import ScanProgress, quiet_terminal
    from sweep.statuses import TrialStatuses

    quiet_terminal()
    url = start_ray(args.address, args.dashboard_host)
    print(start_line(url, output), flush=True)
    resources = fit_resources({"gpu": 1})
    trainable = tune.with_parameters(heads_trial, data=data, split=args.split, poolings=poolings,
                                     batch_size=args.batch_size, names=names)
    storage = args.storage or str((output / "tune").resolve())
    if args.resume:
        tuner = tune.Tuner.restore(f"{storage}/heads", tune.with_resources(trainable, resources),
                                   resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space={"model": tune.grid_search(list(names))},
            run_config=tune.RunConfig(name="heads", storage_path=storage, verbose=0,
                                      callbacks=[ScanProgress(names), TrialStatuses()],
                                      failure_config=tune.FailureConfig(max_failures=1)),  # e.g. its node was lost
        )
    with graceful_stop() as stop:
        try:
            grid = tuner.fit()
        except KeyboardInterrupt:
            raise stopped_at_once(stop, args.resume_command) from None
    raise_if_interrupted(stop, args.resume_command)
    frames, errors = {}, []
    for result in grid:
        path = result.config["model"]
        if result.error is not None or result.checkpoint is None:
            errors.append(f"error: {names[path]}: {error_line(result.error) if result.error else 'no result'}")
            continue
        with result.checkpoint.as_directory() as folder:
            frames[path] = pd.read_parquet(Path(folder) / ROWS_FILE)
    return [frames[p] for p in names if p in frames], errors


def finish(frames: list[pd.DataFrame], output: Path, stamp: dict[str, str]) -> pd.DataFrame:
    """heads.parquet (atomic, every row with ``stamp``: the provenance), heads.png, and the top 10 printed."""
    import pandas as pd

    from sweep.heatmap import plot_heads
    from sweep.leaderboard import top_table, write_parquet

    frame = pd.concat(frames, ignore_index=True)
    for column in ("layer", "head"):
        frame[column] = frame[column].astype("Int64")
    frame = frame[list(COLUMNS)]
    for key, value in stamp.items():
        frame[key] = value
    output.mkdir(parents=True, exist_ok=True)
    write_parquet(frame, output / "heads.parquet")
    plot_heads(frame, output / "heads.png")
    shown = ["model", "method", "pooling", "layer", "head", "threshold_kind", "threshold", "map", "f1", "precision",
             "recall", "auroc", "corr"]
    print("\nTop 10 heads by MAP (at the dev-calibrated threshold):")
    print(top_table(frame[frame["method"] == HEAD], "map", "max", shown))
    print("\nSoft attention and random baseline:")
    print(top_table(frame[frame["method"] != HEAD], "map", "max", shown, n=len(frame)))
    print(f"\nwrote {output / 'heads.parquet'} and {output / 'heads.png'}")
    return frame


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.resume_command = resume_command("sweep.heads", argv)
    poolings = parse_poolings(args.pooling)
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: expected a positive integer")
    if args.smoke_test:
        args.model = args.model or ["tiny-random"]
        args.limit = args.limit or SMOKE_SENTENCES
    if not args.model:
        raise InputError("sweep.heads: --model is required (or --smoke-test)")
    spec = data_config_from_args(args)
    output = check_output_dir(args.output)
    data = load_data(spec, args.split)
    from sweep.models import resolve_models

    names = resolve_models(args.model)
    if args.resume and not has_tune_state(f"{args.storage or output / 'tune'}/heads"):
        raise InputError(f"{args.storage or output / 'tune'}/heads: no scan to resume there; run it without --resume")
    for path, name in names.items():
        probe(path, name, poolings)
    import ray

    try:
        frames, errors = run_trials(names, data, args, poolings, output)
    finally:
        ray.shutdown()
    for line in errors:
        print(line, file=sys.stderr)
    if frames:
        finish(frames, output, provenance(command_line("sweep.heads", argv), spec, tuple(data)))
    return 1 if errors else 0


if __name__ == "__main__":
    from sweep.heads import main as _main  # the trainable pickles by reference to sweep.heads, not __main__

    sys.exit(_main())
