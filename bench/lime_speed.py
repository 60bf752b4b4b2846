"""LIME and integrated-gradients speed on minilm: zs_core.attribution against the seed's way.

  python bench/lime_speed.py [--sentences 10] [--baseline-sentences N] [--samples 4096] [--threads 1]

The model: the minilm encoder with an untrained soft-attention head (speed does not depend on training).
Data: the first --sentences wnut16 test sentences.
- ours: ``lime_word_scores`` (captum Lime; perturbations padded to the sentence's own length, 512 per
  forward pass, identical perturbations run once), 4096 samples per sentence.
- seed's way: a plain loop over the very same perturbations, one batch of 64 at a time, every batch padded
  to max_seq_length 128 (as the seed's LIME classifier function did), then the same weighted ridge fit. Its
  scores are checked against ours (same masks, kernel and regression: they agree up to float rounding).
- ig: ``ig_word_scores``, 50 steps, 8 sentences per batch.
Wall-clock and process CPU seconds are both given: on a shared machine the CPU time is the steadier one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import Ridge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from zs_core.attribution import (  # noqa: E402
    LIME_RIDGE_ALPHA,
    PositiveProbability,
    ig_word_scores,
    lime_masks,
    lime_text_kernel,
    lime_word_scores,
)
from zs_core.batching import NO_WORD, Encoded, encode  # noqa: E402
from zs_core.config import DataConfig, ModelConfig  # noqa: E402
from zs_core.data import load_splits  # noqa: E402
from zs_core.encoders import load_tokenizer  # noqa: E402
from zs_core.model import build_model  # noqa: E402

SEED_BATCH, SEED_LENGTH = 64, 128  # the seed's LIME: 64 perturbations per call, padded to max_seq_length


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def seed_way(model, item: Encoded, n_samples: int, seed: int, index: int, mask_id: int,
             pad_id: int) -> list[float]:
    """The plain loop: perturbations in batches of 64, each padded to 128 pieces, no reuse."""
    word_index = torch.tensor(item.word_index)                                          # [T]
    n_words = int(word_index.max()) + 1
    masks = lime_masks(n_words, n_samples, seed, index)                                 # [S, W]
    forward = PositiveProbability(model)
    length = len(item.input_ids)
    probs = []
    for start in range(0, n_samples, SEED_BATCH):
        keep = masks[start:start + SEED_BATCH]                                          # [b, W]
        ids = torch.full((len(keep), SEED_LENGTH), pad_id)                              # [b, 128]
        ids[:, :length] = torch.tensor(item.input_ids)
        removed = (word_index != NO_WORD) & ~keep[:, word_index.clamp(min=0)].bool()    # [b, T]
        ids[:, :length] = ids[:, :length].masked_fill(removed, mask_id)
        attention = torch.zeros_like(ids)
        attention[:, :length] = 1
        words = torch.full_like(ids, NO_WORD)
        words[:, :length] = word_index
        with torch.no_grad():
            probs.append(forward(ids, attention, words))
    weights = [lime_text_kernel(None, None, row.unsqueeze(0)) for row in masks]
    ridge = Ridge(alpha=LIME_RIDGE_ALPHA).fit(masks.numpy(), torch.cat(probs).numpy(), sample_weight=weights)
    return ridge.coef_.tolist() + [0.0] * (item.n_words - n_words)


def main() -> None:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=10)
    p.add_argument("--baseline-sentences", type=int, default=None, help="seed's way on the first N (default all)")
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--batch", type=int, default=512, help="ours: perturbations per forward pass")
    p.add_argument("--ig-steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steady on a shared box)")
    p.add_argument("--out", default="bench/out/lime_speed.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(model_name="minilm"), seed=0).eval()
    tokenizer = load_tokenizer("minilm")
    sentences = load_splits(DataConfig(limit={"test": args.sentences}), ("test",))["test"]
    items, _ = encode(sentences, tokenizer, SEED_LENGTH)
    n_base = args.baseline_sentences or len(items)
    lengths = [len(it.input_ids) for it in items]
    distinct = [len({tuple(r) for r in lime_masks(max(it.word_index) + 1, args.samples, 0, i).tolist()})
                for i, it in enumerate(items)]
    print(f"{len(items)} sentences, {np.mean(lengths):.1f} pieces on average; {args.samples} samples each, "
          f"{np.mean(distinct):.0f} distinct on average", file=sys.stderr)

    done = [(time.perf_counter(), time.process_time())]  # (wall, cpu) as each sentence finished

    def tick(n: int) -> None:
        done.append((time.perf_counter(), time.process_time()))
        print(".", end="", file=sys.stderr, flush=True)

    ours, ours_wall, ours_cpu = timed(lambda: lime_word_scores(model, items, tokenizer, args.samples, args.batch,
                                                               seed=0, progress=tick))
    print(f"\nours: {ours_wall:.1f} s", file=sys.stderr)
    base, base_wall, base_cpu = timed(lambda: [
        seed_way(model, it, args.samples, 0, i, tokenizer.mask_token_id, tokenizer.pad_token_id)
        for i, it in enumerate(items[:n_base])])
    print(f"seed's way: {base_wall:.1f} s", file=sys.stderr)
    _, ig_wall, ig_cpu = timed(lambda: ig_word_scores(model, items, tokenizer, args.ig_steps, batch_size=8))
    diff = max(abs(a - b) for x, y in zip(ours, base) for a, b in zip(x, y))
    result = {
        "sentences": len(items), "baseline_sentences": n_base, "samples": args.samples, "batch": args.batch,
        "mean_pieces": float(np.mean(lengths)), "mean_distinct_perturbations": float(np.mean(distinct)),
        "lime_ours_sent_per_s": len(items) / ours_wall, "lime_ours_cpu_s_per_sent": ours_cpu / len(items),
        "lime_ours_sent_per_s_on_baseline_sentences": n_base / (done[n_base][0] - done[0][0]),
        "lime_seed_sent_per_s": n_base / base_wall, "lime_seed_cpu_s_per_sent": base_cpu / n_base,
        "speedup_wall_same_sentences": base_wall / (done[n_base][0] - done[0][0]),
        "speedup_cpu_same_sentences": base_cpu / (done[n_base][1] - done[0][1]),
        "max_abs_score_difference": diff,
        "ig_steps": args.ig_steps, "ig_sent_per_s": len(items) / ig_wall, "ig_cpu_s_per_sent": ig_cpu / len(items),
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(), "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
