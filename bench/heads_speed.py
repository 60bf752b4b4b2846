"""Head-scan speed and memory on FCE (the design's performance goals); results go to bench/RESULTS.md.

    python bench/heads_speed.py [--fce ../shared/data/fce] [--batch-size 32] [--sample-heads 3] [--repeat 2]

(a) a plain inference pass over FCE test (sdpa, no attention maps); (b) the full scan: every layer x head,
both poolings, one eager pass per batch, accumulated; (c) the seed's way: one pass per head, each computing
only that head's scores, timed on --sample-heads heads and scaled to all L x H. The three are interleaved
batch by batch (see ``speed``), so a busy shared machine slows them alike. Memory: peak RSS
(VmHWM) of a scan over the first 2,000 and 20,000 FCE train sentences, each in a fresh subprocess.
Without FCE the script says so and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sweep.common import quiet_libraries
from zs_core.batching import batches
from zs_core.data import read_tsv
from zs_core.encoders import layer_head_counts, load_encoder, load_tokenizer
from zs_core.files import write_text_atomic
from zs_core.headscan import HeadAccumulator, encode_in_chunks, length_batches, scan_batch, scan_split
from zs_core.scores import POOLINGS, head_piece_scores, pieces_to_words

ROOT = Path(__file__).resolve().parents[1]
FCE = ROOT.parent / "shared" / "data" / "fce"
MAX_LEN = 128
SECTION = "## Head scan"


def load(path: Path, limit: int | None = None):
    sentences = read_tsv(path, positive_labels=("i",))[:limit]
    tokenizer = load_tokenizer("minilm")
    items, _ = encode_in_chunks(sentences, tokenizer, MAX_LEN)
    return items, [list(s.gold) for s in sentences], tokenizer


@torch.no_grad()
def plain_batch(encoder, items, tokenizer) -> None:
    """(a) a plain inference pass over one batch: sdpa, no attention maps."""
    for _, batch in batches(items, tokenizer, len(items)):
        encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])


@torch.no_grad()
def one_head_batch(acc, encoder, items, golds, tokenizer, layer: int, head: int) -> None:
    """(c) the seed's loop body on one batch: a whole forward pass, then only head (layer, head) is scored."""
    for idx, batch in batches(items, tokenizer, len(items)):
        out = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True)
        att = out.attentions[layer][:, head : head + 1]                       # [B, 1, T, T]
        pieces = head_piece_scores([att], batch["attention_mask"], POOLINGS)  # [B, P, 1, 1, T]
        words = pieces_to_words(pieces, batch["word_index"], max(items[i].n_words for i in idx))
        acc.update(words, [golds[i] for i in idx])


def speed(items, golds, tokenizer, batch_size: int, n_sample: int, repeat: int):
    """Seconds of (a), (b) and each sampled head's (c), measured batch by batch, interleaved.

    Every batch of the scan (``length_batches``) goes through (a), (b) and (c) for each sampled head, the
    whole round ``repeat`` times; each measure keeps its fastest time per batch. Other load on the machine
    then falls on all measures alike. -> (a, b, [c per head], picks, heads in the model).
    """
    plain, eager = load_encoder("minilm").eval(), load_encoder("minilm", attentions=True)    # sdpa / eager
    n_layers, n_heads = layer_head_counts(eager)
    total = n_layers * n_heads
    picks = [divmod(round(k * (total - 1) / max(n_sample - 1, 1)), n_heads) for k in range(n_sample)]
    scan_acc = HeadAccumulator(len(POOLINGS), n_layers, n_heads)
    head_acc = HeadAccumulator(len(POOLINGS), 1, 1)
    jobs = [lambda b, g: plain_batch(plain, b, tokenizer),
            lambda b, g: scan_batch(scan_acc, eager, tokenizer, b, g, "cpu", POOLINGS),
            *[lambda b, g, l=l, h=h: one_head_batch(head_acc, eager, b, g, tokenizer, l, h) for l, h in picks]]
    batches_ = length_batches(items, batch_size)
    seconds = np.zeros(len(jobs))
    for k, batch in enumerate([batches_[0]] + batches_):                      # the first round warms up
        sub, sub_golds = [items[i] for i in batch], [golds[i] for i in batch]
        best = np.full(len(jobs), np.inf)
        for _ in range(repeat):
            for j, job in enumerate(jobs):
                start = time.perf_counter()
                job(sub, sub_golds)
                best[j] = min(best[j], time.perf_counter() - start)
        seconds += best if k else 0.0
    return seconds[0], seconds[1], seconds[2:], picks, total


def peak_rss_mib() -> float:
    """This process's peak resident size: VmHWM from /proc (Linux), else ru_maxrss.

    ru_maxrss is not used on Linux: it keeps the high-water mark across fork + exec, so a child started by a
    large parent would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)


def memory_run(fce: Path, n: int, batch_size: int) -> None:
    """Child process: scan the first n train sentences, print JSON with peak RSS (MiB) and seconds."""
    start = time.perf_counter()
    items, golds, tokenizer = load(fce / "train.tsv", n)
    encoder = load_encoder("minilm", attentions=True)
    scan_split(encoder, tokenizer, items, golds, batch_size, "cpu", POOLINGS)
    print(json.dumps({"sentences": len(items), "peak_rss_mib": peak_rss_mib(), "seconds": time.perf_counter() - start}))


def memory(fce: Path, sizes: tuple[int, ...], batch_size: int) -> list[dict]:
    out = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--fce", str(fce), "--batch-size", str(batch_size), "--memory-run", str(n),
               "--threads", str(torch.get_num_threads())]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this script's section of RESULTS.md; other sections are left as they are."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    start = old.find(SECTION + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if end < 0 else old[end:])
    write_text_atomic(path, new)


def main() -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument("--fce", type=Path, default=FCE)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--sample-heads", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2, help="rounds per batch; each measure keeps its fastest")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's, = cores)")
    p.add_argument("--memory-sizes", default="2000,20000")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument("--memory-run", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_libraries()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.fce / "test.tsv").is_file():
        print(f"FCE not found at {args.fce} (expected test.tsv there): nothing to benchmark")
        return 0
    if args.memory_run:
        memory_run(args.fce, args.memory_run, args.batch_size)
        return 0
    load_before = os.getloadavg()[0]
    mem = memory(args.fce, tuple(int(x) for x in args.memory_sizes.split(",")), args.batch_size)
    items, golds, tokenizer = load(args.fce / "test.tsv")
    plain, scan, per_head, picks, n_heads = speed(items, golds, tokenizer, args.batch_size, args.sample_heads,
                                                  args.repeat)
    seed = per_head.mean() * n_heads
    eager = load_encoder("minilm", attentions=True)
    start = time.perf_counter()
    scan_split(eager, tokenizer, items, golds, args.batch_size, "cpu", POOLINGS)
    whole = time.perf_counter() - start
    lines = [
        SECTION, "",
        f"`python bench/heads_speed.py --batch-size {args.batch_size} --sample-heads {args.sample_heads} "
        f"--repeat {args.repeat}{f' --threads {args.threads}' if args.threads else ''}` "
        f"({time.strftime('%Y-%m-%d')}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} threads {torch.get_num_threads()}, load average {load_before:.1f} at start "
        f"and {os.getloadavg()[0]:.1f} at end). minilm ({n_heads} heads, poolings {'+'.join(POOLINGS)}), "
        f"FCE test {len(items)} sentences, batch {args.batch_size}, max length {MAX_LEN}.", "",
        "Timed batch by batch: each scan batch (at most 32 sentences and 32 x 64^2 attention cells, "
        "`zs_core.headscan.length_batches`) goes through (a), (b) and (c) in turn, the round repeated "
        f"{args.repeat} times, each measure keeping its fastest time per batch, so load from other processes "
        "falls on all three alike.", "",
        "| measure | seconds | ratio | goal |", "| --- | ---: | ---: | --- |",
        f"| (a) plain inference pass (sdpa, no attention maps) | {plain:.1f} | 1.00 | |",
        f"| (b) full scan: {n_heads} heads x {len(POOLINGS)} poolings, one eager pass per batch, accumulated | "
        f"{scan:.1f} | (b)/(a) = {scan / plain:.2f} | <= 1.5 (design: 1.25) |",
        f"| (b) again as one `scan_split` call, as sweep.heads runs it (not interleaved: exposed to other load) | "
        f"{whole:.1f} | (b)/(a) = {whole / plain:.2f} | |",
        f"| (c) seed's way: a pass per head; heads {picks} timed ({', '.join(f'{x:.1f}' for x in per_head)} s), "
        f"mean x {n_heads} | {seed:.1f} | (c)/(b) = {seed / scan:.1f} | >= 30 |", "",
        "| scan of FCE train, fresh process (`--memory-run N`) | peak RSS, VmHWM (MiB) | seconds |",
        "| --- | ---: | ---: |",
        *[f"| first {m['sentences']} sentences | {m['peak_rss_mib']:.0f} | {m['seconds']:.1f} |" for m in mem],
        "", f"Peak RSS ratio {mem[-1]['peak_rss_mib'] / mem[0]['peak_rss_mib']:.3f} (goal <= 1.2).", "",
    ]
    text = "\n".join(lines)
    write_section(args.results, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
