"""python -m sweep.predict: one method's word scores for one split (the seed's stage 2).

  python -m sweep.predict --model CKPT --method soft_attention|max_pool|supervised|head|lime|ig|random \\
      [--layer L --head H --pooling received|cls] [--data wnut16 | --data-dir DIR --positive-labels ...] \\
      --split test --output preds.tsv
  python -m sweep.predict --config pred_soft_attention.conf model_path=CKPT
  python -m sweep.predict --smoke-test [--method lime]

Writes ``preds.tsv`` (the seed's ``word<TAB>score``, a blank line between sentences, the words exactly as
in the data) and ``preds.parquet`` beside it (sentence, word_index, word, score), both or neither.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from sweep.common import (
    Parser,
    add_data_args,
    check_output_file,
    cli,
    command_line,
    data_config_from_args,
    prog,
    provenance,
)
from sweep.seed_conf import apply_predict_conf, conf_parser
from sweep.smoke import smoke_checkpoint, smoke_data
from zs_core.config import DataConfig
from zs_core.data import SPLITS, Sentence, load_splits
from zs_core.errors import InputError
from zs_core.protocol import CLASSIFIER, HEAD, POOLINGS, RANDOM, SOFT_ATTENTION, WORD_SCORING_MODELS, model_method

METHODS = (*WORD_SCORING_MODELS, HEAD, "lime", "ig", RANDOM)
SEED_METHODS = {"model_attention": HEAD}  # the seed's name for one of the encoder's attention heads
CHECKPOINT_METHODS = (*WORD_SCORING_MODELS, "lime", "ig")
SMOKE_LIME_SAMPLES = 256  # --smoke-test: LIME perturbations per sentence (its data and model: sweep.smoke)


def parser() -> Parser:
    p = conf_parser(prog("predict"), __doc__, "prediction")
    p.add_argument("--model", help="a sweep.run checkpoint or sweep output folder (its best kept checkpoint); "
                   "for head, also an encoder name or Hugging Face folder")
    p.add_argument("--trial", help="with a sweep output folder as --model: this trial's kept checkpoint "
                   "(its trial_id in the leaderboard)")
    p.add_argument("--text", metavar="FILE", help="score your own text: one sentence per line, words split on "
                   "whitespace (- for standard input); writes JSON lines (or --format tsv) to --output or stdout")
    p.add_argument("--format", choices=("jsonl", "tsv"), help="with --text: the output's format (default: tsv for "
                   "an --output ending in .tsv, else jsonl)")
    p.add_argument("--method", help=f"one of {', '.join(METHODS)} (the seed's model_attention = head)")
    p.add_argument("--layer", type=int, help="head: the layer, from 0")
    p.add_argument("--head", type=int, help="head: the head, from 0")
    p.add_argument("--pooling", default=POOLINGS[0], choices=POOLINGS, help="head: pooling")
    add_data_args(p)
    p.add_argument("--split", choices=SPLITS, help="the split to score (default test)")
    p.add_argument("--output", help="the TSV to write; the Parquet goes beside it (--text: its file, default stdout)")
    p.add_argument("--lime-samples", type=int, default=None, help="LIME perturbations per sentence (4096)")
    p.add_argument("--lime-batch", type=int, default=512, help="LIME perturbations per forward pass")
    p.add_argument("--lime-replace", choices=("mask", "pad"), default=None,
                   help="what a removed word becomes for LIME: the mask token (default) or the pad token")
    p.add_argument("--ig-steps", type=int, default=50, help="integrated-gradients steps")
    p.add_argument("--ig-batch", type=int, default=256, help="integrated-gradients rows per forward pass")
    p.add_argument("--seed", type=int, help="LIME's draws (default 0); random scores follow one rule, "
                   "the same for a sentence everywhere (zs_core.evaluation.random_scores)")
    p.add_argument("--batch-size", type=int, help="sentences per batch (default: the checkpoint's, or 64)")
    p.add_argument("--max-seq-length", type=int, help="pieces per sentence (default: the checkpoint's)")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lowercase words for the model (the written words keep their case)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--smoke-test", action="store_true",
                   help="tiny-random model trained 1 epoch on 32 wnut16 sentences, 8 test sentences")
    return p


def check_args(args: argparse.Namespace) -> None:
    """Everything that can be checked before a model is loaded."""
    args.method = SEED_METHODS.get(args.method, args.method) or SOFT_ATTENTION
    if args.method not in METHODS:
        raise InputError(f"--method {args.method}: expected one of {', '.join(METHODS)}")
    args.split = args.split or "test"
    args.seed = 0 if args.seed is None else args.seed
    if args.seed < 0:
        raise InputError(f"--seed {args.seed}: expected 0 or more")
    if args.method == HEAD and (args.layer is None or args.head is None):
        raise InputError("--method head needs --layer and --head (both count from 0)")
    if args.method != RANDOM and not args.model and not args.smoke_test:
        raise InputError(f"--method {args.method} needs --model (a checkpoint folder)")
    if not args.output:
        raise InputError("--output: give the TSV file to write")
    output = check_output_file(args.output, "--output", "the TSV file")
    if output.suffix == ".parquet":
        raise InputError(f"{output}: give the .tsv name; the Parquet copy is written beside it")
    for name, least in (("lime_samples", 2), ("lime_batch", 1), ("ig_steps", 1), ("ig_batch", 1), ("batch_size", 1),
                        ("max_seq_length", 3)):
        value = getattr(args, name)
        if value is not None and value < least:
            raise InputError(f"--{name.replace('_', '-')} {value}: expected at least {least}")


def load_model(args: argparse.Namespace):
    """-> (model or encoder, tokenizer, checkpoint config or None); checks --layer/--head against it."""
    from zs_core.checkpoint import is_checkpoint, load_checkpoint
    from zs_core.encoders import layer_head_counts, load_encoder, load_tokenizer

    if args.method in CHECKPOINT_METHODS and not is_checkpoint(args.model):
        raise InputError(f"{args.model}: not a zs-sweep checkpoint; --method {args.method} needs a sweep.run "
                         f"checkpoint folder")
    if is_checkpoint(args.model):
        model, tokenizer, cfg = load_checkpoint(args.model, attentions=args.method == HEAD)
        method = model_method(cfg.model)
        if args.method in WORD_SCORING_MODELS and args.method != method:
            has = "no word scores of its own (soft_attention = False)" if method == CLASSIFIER \
                else f"{method} word scores"
            raise InputError(f"{args.model}: the model has {has}, not --method {args.method}")
        net = model.encoder if args.method == HEAD else model
    else:
        net, tokenizer, cfg = load_encoder(args.model, attentions=True), load_tokenizer(args.model), None
    if args.method == HEAD:
        layers, heads = layer_head_counts(net)
        for flag, value, count in (("--layer", args.layer, layers), ("--head", args.head, heads)):
            if not 0 <= value < count:
                raise InputError(f"{flag} {value}: out of range; {args.model} has {layers} layers x {heads} "
                                 f"heads (counting from 0)")
    if args.method == "lime" and args.lime_replace != "pad" and tokenizer.mask_token_id is None:
        raise InputError(f"{args.model}: the tokenizer has no mask token, which LIME puts in place of words")
    return net, tokenizer, cfg


def _progress(args: argparse.Namespace, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="sent", desc=args.method, file=sys.stderr, disable=args.no_progress,
                dynamic_ncols=True,  # always sentences per second, also below 1 (tqdm would invert it)
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}]")


def compute(args: argparse.Namespace, sentences: list[Sentence]) -> tuple[list[list[float]], dict]:
    """The scores, and what made them (for the Parquet metadata)."""
    from zs_core.attribution import ig_word_scores, lime_word_scores
    from zs_core.batching import encode
    from zs_core.config import EvalConfig
    from zs_core.encoders import pick_device, positions
    from zs_core.evaluation import random_scores
    from zs_core.scores import head_word_scores, model_scores

    meta = {"method": args.method, "model": args.model, "split": args.split, "seed": args.seed}
    if args.method == RANDOM:
        return random_scores(sentences)[1], meta
    device = pick_device(args.device)
    net, tokenizer, cfg = load_model(args)
    data_cfg, eval_cfg = (cfg.data, cfg.eval) if cfg is not None else (DataConfig(), EvalConfig())
    max_len = args.max_seq_length or data_cfg.max_seq_length
    most = positions(getattr(net, "encoder", net).config)
    if max_len > most:  # longer sentences would run past the position embeddings
        raise InputError(f"--max-seq-length {max_len}: {args.model} has {most} positions; expected at most {most}")
    lowercase = data_cfg.lowercase if args.lowercase is None else args.lowercase
    batch_size = args.batch_size or eval_cfg.per_device_eval_batch_size
    items, truncated = encode(sentences, tokenizer, max_len, lowercase=lowercase)
    if truncated:
        print(f"warning: {truncated} words cut off by max_seq_length {max_len} score 0", file=sys.stderr)
    net.to(device)
    meta.update(max_seq_length=max_len, lowercase=lowercase, truncated_words=truncated)
    if args.method in WORD_SCORING_MODELS:
        return model_scores(net, items, tokenizer, batch_size, device).words, meta
    if args.method == HEAD:
        meta.update(layer=args.layer, head=args.head, pooling=args.pooling)
        return head_word_scores(net, items, tokenizer, args.layer, args.head, args.pooling, batch_size,
                                device), meta
    with _progress(args, len(items)) as bar:
        if args.method == "lime":
            pad = args.lime_replace == "pad"
            meta.update(lime_samples=args.lime_samples, baseline="pad token" if pad else "mask token")
            return lime_word_scores(net, items, tokenizer, args.lime_samples, args.lime_batch, args.seed,
                                    device, bar.update, replace_with_pad=pad), meta
        baseline = "mask token" if tokenizer.mask_token_id is not None else "pad token"
        meta.update(ig_steps=args.ig_steps, baseline=baseline)
        return ig_word_scores(net, items, tokenizer, args.ig_steps, min(batch_size, 8), args.ig_batch, device,
                              bar.update), meta


def resolve_model(args: argparse.Namespace) -> None:
    """A sweep output folder as --model: its best kept checkpoint, or --trial's (said on stderr)."""
    from sweep.models import checkpoint_of

    if not args.model:
        raise InputError(f"--trial {args.trial}: goes with --model SWEEP_FOLDER")
    resolved = checkpoint_of(args.model, args.trial)
    if resolved != args.model:
        which = f"trial {args.trial}'s" if args.trial else "its best kept"
        print(f"{args.model}: {which} checkpoint, {resolved}", file=sys.stderr)
        args.model = resolved


@cli
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    apply_predict_conf(args)
    if args.model or args.trial:
        resolve_model(args)
    with tempfile.TemporaryDirectory(prefix="zs-predict-smoke-") as tmp:
        if args.text is not None:
            from sweep.predict_text import predict_text

            if args.smoke_test and args.method != RANDOM:
                args.model = args.model or str(smoke_checkpoint(Path(tmp)))
            return predict_text(args, check_args, compute, load_model)
        if args.smoke_test:
            if args.data or args.data_dir or args.limit:
                raise InputError("--smoke-test uses wnut16 (8 test sentences); leave out the data arguments")
            args.model = args.model or ("tiny-random" if args.method == RANDOM else None)
            args.output = args.output or str(Path(tmp) / "preds.tsv")
            args.lime_samples = args.lime_samples or SMOKE_LIME_SAMPLES
            if SEED_METHODS.get(args.method, args.method) == HEAD:
                args.layer, args.head = args.layer or 0, args.head or 0
        check_args(args)
        args.lime_samples = args.lime_samples or 4096
        spec = smoke_data() if args.smoke_test else data_config_from_args(args)
        sentences = load_splits(spec, (args.split,))[args.split]
        if args.smoke_test and args.model is None:
            args.model = str(smoke_checkpoint(Path(tmp)))
        scores, meta = compute(args, sentences)
        from zs_core.predictions import write_predictions

        stamp = provenance(command_line("sweep.predict", argv), spec, (args.split,))
        tsv, parquet = write_predictions(args.output, sentences, scores, {**meta, **stamp})
        n_words = sum(len(s.words) for s in sentences)
        where = f"{tsv} and {parquet}"
        if tmp in str(tsv):
            where = "a temporary folder (removed; give --output to keep them)"
        print(f"{args.method}: {len(sentences)} sentences, {n_words} words -> {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
