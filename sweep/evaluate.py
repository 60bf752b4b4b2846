"""python -m sweep.evaluate: token metrics of a word-score file against gold (the seed's stage 3).

  python -m sweep.evaluate --preds P.tsv --gold G.tsv [--positive-labels i] [--threshold 0.5] [--top-k 0]
      [--calibrate-on DEV_PREDS.tsv DEV_GOLD.tsv] [--json-out metrics.json]
  python -m sweep.evaluate --preds P.tsv --data wnut16 --split test [--calibrate-on DEV_PREDS.tsv]
  python -m sweep.evaluate --config eval_soft_attention.conf [key=value ...]

Checks that predictions and gold hold the same sentences and words (else names the first difference with
its line in both files), then prints one JSON object: preds, gold, top_k, n_tokens, n_positive and
``rows``, zs-sweep's result rows (zs_core.evaluation.ROW_KEYS): the one at --threshold (threshold_kind
"fixed") and, with --calibrate-on, the one at the threshold that maximises token F1 on the dev pair
("dev_calibrated"); each with precision, recall, f1, f05, map, auroc, corr (the seed's Pearson correlation
of gold and max(score, 0) over all words) and n_sentences.
"""
from __future__ import annotations

import argparse
import json
import sys
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
from sweep.seed_conf import apply_evaluate_conf, conf_parser
from zs_core.config import DataConfig
from zs_core.data import SPLITS, Sentence, load_splits
from zs_core.errors import InputError
from zs_core.files import write_text_atomic
from zs_core.provenance import data_name, short_sha256

# sklearn and pyarrow (zs_core.evaluation, zs_core.predictions) are imported where used: --help answers at once


def parser() -> Parser:
    p = conf_parser(prog("evaluate"), __doc__, "evaluation")
    p.add_argument("--preds", help="the word-score TSV (word<TAB>score) to evaluate")
    p.add_argument("--gold", help="the gold TSV (word<TAB>label); or give --data/--data-dir and --split")
    add_data_args(p)
    p.add_argument("--split", choices=SPLITS, help="with --data/--data-dir: the gold split (default test)")
    p.add_argument("--threshold", type=float, help="a word is positive when its score >= this (0.5)")
    p.add_argument("--top-k", type=int, help="... and among its sentence's top k scores (0 = no limit)")
    p.add_argument("--calibrate-on", nargs="+", metavar="DEV", help="DEV_PREDS [DEV_GOLD]: calibrate the "
                   "threshold there (DEV_GOLD defaults to the dataset's dev split)")
    p.add_argument("--smoke-test", action="store_true", help="the random floor's scores of 32 wnut16 test sentences, "
                   "evaluated against wnut16 (dev's 32 to calibrate)")
    p.add_argument("--output", "--json-out", dest="json_out", metavar="OUTPUT",
                   help="also write the JSON object to this file (--json-out: the older name)")
    return p


def gold_source(args: argparse.Namespace) -> tuple[str | None, DataConfig | None]:
    """(gold file, None) or (None, the dataset to take --split from)."""
    named = args.data or args.data_dir or args.seed_dataset
    if args.gold:
        if named:
            raise InputError("--gold and --data/--data-dir/--seed-dataset: give one of them")
        return args.gold, None
    if not named:
        raise InputError("give the gold labels: --gold FILE, or --data/--data-dir/--seed-dataset with --split")
    return None, data_config_from_args(args)


def load_gold(args: argparse.Namespace, split: str) -> tuple[str, list[Sentence]]:
    """-> (a name for messages, gold sentences of ``split``)."""
    from zs_core.predictions import read_gold

    path, spec = gold_source(args)
    if path is not None:
        return path, read_gold(path, args.positive_labels or ())
    return f"{data_name(spec)}:{split}", load_splits(spec, (split,))[split]


def load_pair(preds_path: str, gold_name: str, gold: list[Sentence]) -> list[Sentence]:
    from zs_core.predictions import check_same_words, read_predictions

    preds = read_predictions(preds_path)
    check_same_words(preds_path, preds, gold_name, gold)
    return preds


def smoke_test(args: argparse.Namespace, argv: list[str] | None) -> int:
    """--smoke-test: the random floor's word scores of the first 32 wnut16 test and dev sentences, evaluated
    against wnut16's gold with the dev pair for calibration (what runs is the command line it prints)."""
    import tempfile

    from sweep.smoke import smoke_predictions

    n = 32  # the first 8 test sentences hold no entity
    given = [flag for flag in ("preds", "gold", "data", "data_dir", "seed_dataset", "calibrate_on", "config", "split")
             if getattr(args, flag)]
    if given:
        raise InputError(f"--smoke-test makes its own predictions; leave out --{given[0].replace('_', '-')}")
    rest = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--smoke-test"]
    with tempfile.TemporaryDirectory(prefix="zs-evaluate-smoke-") as tmp:
        test, dev = smoke_predictions(Path(tmp), n)
        concrete = [*rest, "--preds", test, "--data", "wnut16", "--limit", str(n), "--calibrate-on", dev]
        print(f"smoke test: {command_line('sweep.evaluate', concrete)}", file=sys.stderr)
        return main(concrete)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.smoke_test:
        return smoke_test(args, argv)
    from zs_core.evaluation import list_rows
    from zs_core.predictions import prediction_meta, read_gold

    apply_evaluate_conf(args)
    if not args.preds:
        raise InputError("--preds: give the word-score file to evaluate")
    top_k = 0 if args.top_k is None else args.top_k
    if top_k < 0:
        raise InputError(f"--top-k: expected 0 (no limit) or more, got {top_k}")
    threshold = 0.5 if args.threshold is None else args.threshold
    if args.json_out:
        check_output_file(args.json_out, "--json-out", "the JSON file")
    gold_name, gold = load_gold(args, args.split or "test")  # split: test unless --split or the conf names one
    preds = load_pair(args.preds, gold_name, gold)
    dev = None
    if args.calibrate_on:
        if len(args.calibrate_on) > 2:
            raise InputError("--calibrate-on: give DEV_PREDS and DEV_GOLD (or DEV_PREDS alone with --data)")
        if len(args.calibrate_on) == 2:
            dev_name, dev_gold = args.calibrate_on[1], read_gold(args.calibrate_on[1], args.positive_labels or ())
        elif args.gold:
            raise InputError("--calibrate-on DEV_PREDS alone needs --data/--data-dir (its dev split is the gold)")
        else:
            dev_name, dev_gold = load_gold(args, "dev")
        dev = ([list(s.gold) for s in dev_gold], [list(s.labels) for s in load_pair(args.calibrate_on[0], dev_name,
                                                                                      dev_gold)])
    golds = [list(s.gold) for s in gold]
    meta = prediction_meta(args.preds)
    rows = list_rows(meta.get("method", "predictions"), golds, [list(s.labels) for s in preds], dev=dev,
                     fixed=threshold, top_k=top_k)
    split = args.split or "test"
    spec = gold_source(args)[1]
    stamp = provenance(command_line("sweep.evaluate", argv), spec, (split,))
    if spec is None:
        stamp.update(data=args.gold, **{f"data_sha256_{split}": short_sha256(args.gold)})
    result = {"preds": args.preds, "preds_sha256": short_sha256(args.preds), "gold": gold_name, "top_k": top_k,
              "n_tokens": sum(map(len, golds)),
              "n_positive": sum(map(sum, golds)),
              "rows": [{**row, **{k: meta[k] for k in ("layer", "head", "pooling") if k in meta}} for row in rows],
              "provenance": stamp}
    text = json.dumps(result)
    if args.json_out:
        write_text_atomic(Path(args.json_out), text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
