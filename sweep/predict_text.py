"""sweep.predict --text FILE: word scores of new, unlabelled text, without writing the seed's TSV first.

FILE holds one sentence per line (``-``: standard input), its words split on whitespace; blank lines are skipped.
The scores go to --output (standard output when it is absent or ``-``) as JSON lines, one object per sentence
``{"sentence": i, "prob": P(positive) or null, "words": [...], "scores": [...]}``, or with ``--format tsv`` (or
an --output ending in .tsv) as ``word<TAB>score`` lines, a blank line between sentences, each sentence
after a comment line ``# sentence_prob = 0.9123`` (CoNLL-U's comment style).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zs_core.data import Sentence
from zs_core.errors import InputError
from zs_core.files import write_text_atomic
from zs_core.protocol import WORD_SCORING_MODELS

FORMATS = ("jsonl", "tsv")


def read_text(path: str) -> list[Sentence]:
    """One sentence per non-blank line of ``path`` (``-``: standard input), words split on whitespace."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(f"--text {path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"--text {path}: not UTF-8 text") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # splitlines() would also split at U+2028
    sentences = [Sentence(tuple(line.split()), None) for line in lines if line.strip()]
    if not sentences:
        raise InputError(f"--text {path}: no sentence in it (one sentence per line)")
    return sentences


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return "tsv" if args.output and Path(args.output).suffix == ".tsv" else "jsonl"


def render(sentences: list[Sentence], scores: list[list[float]], probs: list[float | None], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps({"sentence": i, "prob": p, "words": list(s.words), "scores": [float(x) for x in w]})
                       + "\n" for i, (s, w, p) in enumerate(zip(sentences, scores, probs)))
    blocks = []
    for sentence, words, prob in zip(sentences, scores, probs):
        head = "" if prob is None else f"# sentence_prob = {prob:.6g}\n"
        blocks.append(head + "".join(f"{w}\t{x:.6g}\n" for w, x in zip(sentence.words, words)))
    return "\n".join(blocks)


def sentence_probs(args: argparse.Namespace, sentences: list[Sentence]) -> list[float | None]:
    """P(positive) per sentence from the --model checkpoint; None where there is no classifier (a plain encoder)."""
    from zs_core.checkpoint import is_checkpoint

    if not args.model or not is_checkpoint(args.model):
        return [None] * len(sentences)
    from zs_core.encoders import pick_device
    from zs_core.inference import load_classifier, score_words

    model, tokenizer, cfg = load_classifier(args.model)
    return [prob for prob, _ in score_words(model, tokenizer, cfg, [s.words for s in sentences],
                                            args.batch_size, pick_device(args.device))]


def predict_text(args: argparse.Namespace, check_args, compute, load_model) -> int:
    """Score --text's sentences with --method and write them (``check_args``, ``compute`` and ``load_model``:
    sweep.predict's)."""
    for flag, value in (("--data", args.data), ("--data-dir", args.data_dir), ("--seed-dataset", args.seed_dataset),
                        ("--split", args.split), ("--limit", args.limit), ("--sample", args.sample)):
        if value:
            raise InputError(f"--text and {flag}: --text scores the sentences of its file; leave out {flag}")
    output = None if args.output in (None, "-") else Path(args.output)
    if output is not None and output.is_dir():
        raise InputError(f"--output {output}: is a folder, expected the file to write")
    fmt = output_format(args)
    args.output = "text.tsv"  # the method's checks (sweep.predict's) want a TSV name: the text's output is above
    check_args(args)
    sentences = read_text(args.text)
    args.split = "text"
    if args.method in WORD_SCORING_MODELS:  # the probability and the words in one pass
        from zs_core.encoders import pick_device
        from zs_core.inference import score_words

        net, tokenizer, cfg = load_model(args)
        pairs = score_words(net, tokenizer, cfg, [s.words for s in sentences], args.batch_size,
                            pick_device(args.device))
        probs, scores = [p for p, _ in pairs], [w for _, w in pairs]
    else:
        scores, _ = compute(args, sentences)
        probs = sentence_probs(args, sentences)
    text = render(sentences, scores, probs, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        print(f"{args.method}: {len(sentences)} sentences, {sum(len(s.words) for s in sentences)} words -> {output}",
              file=sys.stderr)
    return 0
