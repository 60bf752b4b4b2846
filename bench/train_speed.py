"""Training speed: zs_core's batches (padded to the batch's longest, length-grouped) versus the seed's way
(every batch padded to max_seq_length), in one run, on the same sentences, model and optimizer steps.

    python bench/train_speed.py                       # FCE length mix, first 2,000 train sentences, minilm
    python bench/train_speed.py --sentences 400 --equal-length 32   # also the equal-length check
    python bench/train_speed.py --progress --sentences 400            # zs_core.train, progress off vs on

Prints sentences/s for each way and the ratio; the numbers go to bench/RESULTS.md by hand. With --progress:
zs_core.train's own train/sentences_per_s over one epoch, alternately without on_step and with the trial's
poster (sweep.progress) posting to a real Ray actor, --repeats times each.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from zs_core.batching import batches, encode  # noqa: E402
from zs_core.config import DataConfig, build_config  # noqa: E402
from zs_core.data import load_splits  # noqa: E402
from zs_core.encoders import load_tokenizer  # noqa: E402
from zs_core.model import build_model  # noqa: E402
from zs_core.protocol import SENTENCES_PER_S
from zs_core.train import make_optimizer  # noqa: E402

FCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fce"


def pad_to(batch: dict, length: int, pad_id: int) -> dict:
    """The seed's way: every batch padded to max_seq_length."""
    extra = length - batch["input_ids"].shape[1]
    if extra <= 0:
        return batch
    pad = {"input_ids": pad_id, "attention_mask": 0, "word_index": -1}
    return {k: (torch.nn.functional.pad(v, (0, extra), value=pad[k]) if k in pad else v) for k, v in batch.items()}


def sentences_per_second(items, tokenizer, cfg, padded: bool, group: bool) -> float:
    torch.manual_seed(0)
    model = build_model(cfg.model, seed=0)
    model.train()
    optimizer = make_optimizer(model, cfg)
    stream = batches(items, tokenizer, cfg.train.per_device_train_batch_size, shuffle=True, group_by_length=group)
    start = time.perf_counter()
    for _, batch in stream:
        if padded:
            batch = pad_to(batch, cfg.data.max_seq_length, tokenizer.pad_token_id)
        _, loss = model(batch, batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return len(items) / (time.perf_counter() - start)


def compare(items, tokenizer, cfg, label: str) -> None:
    seed_way = sentences_per_second(items, tokenizer, cfg, padded=True, group=False)
    longest = sentences_per_second(items, tokenizer, cfg, padded=False, group=False)
    grouped = sentences_per_second(items, tokenizer, cfg, padded=False, group=True)
    print(f"{label}: {len(items)} sentences, batch {cfg.train.per_device_train_batch_size}, "
          f"max_seq_length {cfg.data.max_seq_length}")
    print(f"  seed's way (padded to max_seq_length): {seed_way:7.1f} sentences/s")
    print(f"  padded to the batch's longest:         {longest:7.1f} sentences/s  ({longest / seed_way:.2f}x)")
    print(f"  length-grouped batches (zs_core):      {grouped:7.1f} sentences/s  ({grouped / seed_way:.2f}x)")


def progress_cost(splits, tokenizer, cfg, repeats: int) -> None:
    """zs_core.train's sentences/s without and with sweep.run's progress posts, alternating, median of each."""
    import statistics

    import ray

    from sweep.common import quiet_libraries
    from sweep.progress import poster, start_board
    from zs_core.train import train

    quiet_libraries()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    board, speeds = start_board(), {"off": [], "on": []}
    for _ in range(repeats):
        for way in ("off", "on"):
            on_step = poster(board, "bench") if way == "on" else None
            model = build_model(cfg.model, seed=0)
            speeds[way] += [m[SENTENCES_PER_S] for m in train(cfg, model, tokenizer, splits,
                                                                      on_step=on_step)]
    posts = ray.get(board.snapshot.remote()).get("bench", {}).get("step")
    ray.shutdown()
    off, on = statistics.median(speeds["off"]), statistics.median(speeds["on"])
    print(f"zs_core.train, {len(splits['train'])} sentences, batch {cfg.train.per_device_train_batch_size}, "
          f"1 epoch, {repeats} runs each (alternating); the board last saw step {posts}")
    print(f"  progress off: {off:7.1f} sentences/s  (runs: {', '.join(f'{x:.1f}' for x in speeds['off'])})")
    print(f"  progress on:  {on:7.1f} sentences/s  (runs: {', '.join(f'{x:.1f}' for x in speeds['on'])})  "
          f"({on / off:.3f}x)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--sentences", type=int, default=2000)
    p.add_argument("--model", default="minilm")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--equal-length", type=int, default=0, help="also compare on sentences of exactly N pieces")
    p.add_argument("--progress", action="store_true", help="instead: zs_core.train with progress posts off vs on")
    p.add_argument("--repeats", type=int, default=3, help="with --progress: runs of each way")
    args = p.parse_args()
    if not FCE.is_dir():
        print(f"{FCE} is absent: this benchmark needs the FCE data; nothing measured")
        return 0
    torch.set_num_threads(os.cpu_count() or 1)
    splits = load_splits(DataConfig(dir=str(FCE), positive_labels=("i",),
                                    limit={"train": args.sentences, "dev": 1, "test": 1}), splits=("train", "dev"))
    cfg = build_config({"model_name": args.model, "per_device_train_batch_size": args.batch_size}, "bench")
    tokenizer = load_tokenizer(args.model)
    if args.progress:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
        one_epoch = build_config({"model_name": args.model, "per_device_train_batch_size": args.batch_size,
                                  "num_train_epochs": 1}, "bench")
        progress_cost(splits, tokenizer, one_epoch, args.repeats)
        return 0
    items, _ = encode(splits["train"], tokenizer, cfg.data.max_seq_length)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    compare(items, tokenizer, cfg, "FCE length mix")
    if args.equal_length:
        n = args.equal_length
        equal = [e for e in items if len(e.input_ids) >= n]
        equal = [type(e)(e.input_ids[: n - 1] + e.input_ids[-1:], e.word_index[: n - 1] + [-1], e.n_words,
                         e.label, None) for e in equal][: args.sentences]
        short = build_config({"model_name": args.model, "per_device_train_batch_size": args.batch_size,
                              "max_seq_length": n}, "bench")
        compare(equal, tokenizer, short, f"equal length ({n} pieces)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
