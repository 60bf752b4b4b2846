"""python -m sweep.report OUT [--output report.html]: one self-contained HTML page for sweep output folders.

OUT is a sweep.run output folder (leaderboard.parquet), a sweep.heads output folder (heads.parquet) or a
folder holding such folders (searched two levels down). The page holds a sortable leaderboard (click a
header; ``#sort=COLUMN`` or ``#sort=COLUMN:asc|desc`` in the URL sorts on load), the learning curves of the
top trials, the heads heatmap, and example test sentences shaded by soft attention, the best head and LIME
from the best kept checkpoint. Images are embedded as PNG data URIs; the page loads nothing else. What is
shown is computed in zs_core.report_data and sweep.report_plots, and rendered (autoescaped) from
sweep/templates/report.html.j2 with its report.css and report.js.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.common import Parser, check_output_file, cli, prog
from sweep.text import model_label
from zs_core.errors import InputError, error_line
from zs_core.files import write_text_atomic
from zs_core.protocol import DEFAULT_METRIC, DEV, TEST, TOK_F1, TOK_MAP, on_dev, on_test

BOARD, CURVES, HEADS, SWEEP_YAML = "leaderboard.parquet", "curves.parquet", "heads.parquet", "sweep.yaml"
RULES = "rules.parquet"
HIDDEN_METRICS = ("n_sentences", "truncated_words")
HEAD_COLUMNS = ("model", "method", "pooling", "layer", "head", "map", "f1", "threshold",  # these lead
                "split", "threshold_kind", "precision", "recall", "f05", "auroc", "corr", "n_sentences")
HEAD_LEAD = 8
SKIP_DIRS = ("tune",)

if TYPE_CHECKING:
    import pandas as pd

# pandas, numpy, matplotlib and torch are imported where used: --help answers at once


def parser() -> Parser:
    p = Parser(prog=prog("report"), description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", help="a sweep.run or sweep.heads output folder, or a folder holding them")
    p.add_argument("--output", default=None, help="the HTML file to write (default FOLDER/report.html)")
    p.add_argument("--trial", default=None, help="the examples from this trial's kept checkpoint (its trial_id in the "
                   "leaderboard; default: the sweep's best kept checkpoint)")
    p.add_argument("--examples", type=int, default=8, help="positive test sentences to show (0: none)")
    p.add_argument("--heads", default=None, help="a heads.parquet (or its folder) that names the best head")
    p.add_argument("--lime-samples", type=int, default=256, help="LIME perturbations per sentence (0: no LIME)")
    p.add_argument("--smoke-test", action="store_true", help="a report of a tiny sweep folder made here without "
                   "Ray (tiny-random, 1 epoch on 32 wnut16 sentences), in a temporary folder unless --output")
    return p


def parse_args(argv: list[str] | None):
    return parser().parse_args(argv)


def find_outputs(root: Path, depth: int = 2) -> tuple[list[Path], list[Path]]:
    """(sweep folders, head-scan folders) at or below ``root``; Tune's result trees are not searched."""
    sweeps, scans = [], []
    if (root / BOARD).is_file():
        sweeps.append(root)
    if (root / HEADS).is_file():
        scans.append(root)
    if depth > 0:
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                          and p.name not in SKIP_DIRS):
            more = find_outputs(sub, depth - 1)
            sweeps += more[0]
            scans += more[1]
    return sweeps, scans


def read_parquet(path: Path, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A Parquet table that must hold ``columns``; anything else is one InputError naming the file."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot be read as Parquet ({error_line(err)})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: has no column {missing[0]!r}; not a zs-sweep output?")
    return frame


def read_sweep_yaml(folder: Path) -> dict:
    """A sweep folder's sweep.yaml ({} when there is none) and its first line's command as ``_command``."""
    from sweep.yamlfile import read_yaml

    path = folder / SWEEP_YAML
    if not path.is_file():
        return {}
    doc = read_yaml(path) or {}
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping (name, data, fixed, search, tune), got {type(doc).__name__}")
    text = path.read_text(encoding="utf-8")
    doc["_command"] = text.splitlines()[0].lstrip("# ") if text.startswith("#") else ""
    return doc


def examples_part(folder: Path, doc: dict, board: pd.DataFrame, args, scans: list[Path]) -> dict:
    """{"note": why there are none} or the checkpoint, its label, notes and the shaded sentences."""
    from sweep.models import best_checkpoint, checkpoint_of
    from sweep.report_data import example_scores, shaded
    from zs_core.config import DATA_SOURCE, data_config

    if args.examples <= 0:
        return {"note": "Examples: none asked for (--examples 0)."}
    try:  # --trial's checkpoint where this sweep kept it (main checks that one sweep did)
        checkpoint = Path(checkpoint_of(str(folder), args.trial)) if args.trial else best_checkpoint(folder)
    except InputError:
        checkpoint = best_checkpoint(folder)
    if checkpoint is None or "data" not in doc:
        why = "no kept checkpoint was found" if checkpoint is None else f"{SWEEP_YAML} names no data"
        return {"note": f"Examples skipped: {why}."}
    if args.heads:
        heads = Path(args.heads)
        heads = [heads / HEADS if heads.is_dir() else heads]
    else:  # below the sweep folder, beside it, or anywhere in the reported tree
        near = [*folder.glob(f"*/{HEADS}"), *folder.parent.glob(f"*/{HEADS}"), *(s / HEADS for s in scans)]
        heads = list(dict.fromkeys(p.resolve() for p in near if p.is_file()))
    try:
        block = doc["data"]  # its source only: an older sweep.yaml also held how words are encoded
        block = {k: v for k, v in block.items() if k in DATA_SOURCE} if isinstance(block, dict) else block
        data = data_config(block, str(folder / SWEEP_YAML))
        examples = example_scores(checkpoint, data, args.examples, args.lime_samples, heads, bool(args.heads))
    except (InputError, OSError, ValueError, RuntimeError, KeyError) as err:
        print(f"warning: {folder}: examples skipped: {err}", file=sys.stderr)
        return {"note": f"Examples skipped: {err}"}
    return {"note": None, "checkpoint": str(checkpoint), "label": model_label(str(checkpoint)),
            "notes": examples.notes, "sentences": shaded(examples)}


def sweep_part(folder: Path, index: int, args, scans: list[Path]) -> dict:
    from sweep.leaderboard import rule_summary
    from sweep.report_plots import curves_uri, rules_uri
    from sweep.report_tables import leaderboard_columns, table, varying_keys

    board, doc = read_parquet(folder / BOARD, ("trial_id", "status")), read_sweep_yaml(folder)
    tune = doc.get("tune") or {}
    metric, mode = tune.get("metric", DEFAULT_METRIC), tune.get("mode", "max")
    search = list(doc.get("search") or {})
    if metric in board:
        board = board.sort_values(metric, ascending=mode == "min", na_position="last")
    board = board.assign(kept=board["checkpoint"].notna() if "checkpoint" in board else False)
    metrics = [c for c in board.columns if c.startswith((DEV, TEST)) and not c.endswith(HIDDEN_METRICS)]
    metrics.sort(key=lambda c: (not c.startswith(DEV), c != metric))
    lead, rest = leaderboard_columns(board, search, metric, metrics)
    counts = ", ".join(f"{n} {s}" for s, n in board["status"].value_counts().items()) if "status" in board else ""
    random_row = board[board["trial_id"] == "random"] if "trial_id" in board else board.iloc[:0]
    baseline = random_row[metric].iloc[0] if metric in random_row and len(random_row) else None
    by_config, grouped = folder / "leaderboard_by_config.parquet", None
    if search and by_config.is_file():
        frame = read_parquet(by_config)
        shown = [m for m in (metric, on_test(TOK_F1), on_test(TOK_MAP), on_dev(TOK_MAP)) if f"{m}_mean" in frame]
        frame = frame.assign(**{m: frame[f"{m}_mean"] for m in shown})
        keys = varying_keys(frame, search)
        lead_stats = [m for m in shown if m != on_dev(TOK_MAP)]  # dev MAP (the oracle's) waits behind the toggle
        grouped = table(frame, [*keys, "seeds", *lead_stats, *shown, "n"], f"by-config-{index}",
                        lead=len(keys) + 1 + len(lead_stats), spread={m: f"{m}_std" for m in shown})
    curves = rules = rules_plot = None
    picks = read_parquet(folder / RULES) if (folder / RULES).is_file() else None
    if picks is not None and len(picks):
        summary = rule_summary(picks)
        rules = table(summary, list(summary.columns), f"rules-{index}",
                      lambda r: "baseline" if r.get("oracle") is True else "")
    if (folder / CURVES).is_file():
        ranked = board[board["trial_id"] != "random"]["trial_id"].astype(str).tolist()
        curve_frame = read_parquet(folder / CURVES)
        curves = curves_uri(curve_frame, ranked, metric, baseline)
        rules_plot = rules_uri(curve_frame, picks)
    return {"index": index, "name": str(doc.get("name", folder.name)), "folder": str(folder),
            "command": doc.get("_command", ""), "metric": metric, "mode": mode, "n_rows": len(board),
            "counts": counts, "provenance": provenance(board), "by_config": grouped, "curves": curves,
            "rules": rules, "rules_plot": rules_plot,
            "curves_file": CURVES, "examples": examples_part(folder, doc, board, args, scans),
            "leaderboard": table(board, lead + rest, f"leaderboard-{index}", _board_row_class, lead=len(lead))}


def _board_row_class(row) -> str:
    return "baseline" if row.get("trial_id") == "random" else ("kept" if row["kept"] else "")


def heads_part(folder: Path, index: int) -> dict:
    import pandas as pd

    from sweep.report_plots import heatmap_uri
    from sweep.report_tables import table

    frame = read_parquet(folder / HEADS, ("model", "method", "layer", "head", "pooling", "map"))
    heads = frame[frame["method"] == "head"].sort_values("map", ascending=False)
    shown = pd.concat([heads.head(10), frame[frame["method"] != "head"]], ignore_index=True)
    return {"index": index, "folder": str(folder), "provenance": provenance(frame),
            "heatmap": heatmap_uri(folder, frame) if len(heads) else None,
            "table": table(shown, list(HEAD_COLUMNS), f"heads-{index}",
                           lambda r: "baseline" if r.get("method") == "random" else "", lead=HEAD_LEAD)}


def provenance(frame: pd.DataFrame) -> dict | None:
    if "created_at" not in frame or frame["created_at"].dropna().empty:
        return None
    versions = ", ".join(f"{c[8:]} {frame[c].dropna().iloc[0]}" for c in frame.columns
                         if c.startswith("version_") and frame[c].dropna().any())
    sha = str(frame["git_sha"].dropna().iloc[0])[:10] if "git_sha" in frame and frame["git_sha"].notna().any() else "?"
    return {"created": str(frame["created_at"].dropna().iloc[0]), "sha": sha, "versions": versions}


def page(title: str, sweeps: list[dict], scans: list[dict]) -> str:
    """The page from sweep/templates/report.html.j2 (autoescaped: every value is text, never markup)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    from sweep.report_data import MOST_ALPHA, NEGATIVE_RGB, POSITIVE_RGB
    from sweep.report_plots import TOP_CURVES

    env = Environment(loader=PackageLoader("sweep", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    colours = {"positive": POSITIVE_RGB, "negative": NEGATIVE_RGB, "most": MOST_ALPHA}
    return env.get_template("report.html.j2").render(title=title, sweeps=sweeps, scans=scans, colours=colours,
                                                     top_curves=TOP_CURVES)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        return smoke_test(args)
    if not args.folder:
        raise InputError(f"{prog('report')}: give an output folder of sweep.run or sweep.heads (or --smoke-test)")
    root = Path(args.folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; expected a sweep.run or sweep.heads output folder")
    sweeps, scans = find_outputs(root)
    if not sweeps and not scans:
        raise InputError(f"{root}: holds neither {BOARD} nor {HEADS} (nor do its subfolders); expected a "
                         f"sweep.run or sweep.heads output folder")
    output = check_output_file(args.output or root / "report.html", "--output", "the HTML file")
    if args.examples < 0 or args.lime_samples < 0:
        raise InputError("--examples and --lime-samples: expected 0 or a positive integer")
    if args.trial:
        check_trial(args.trial, sweeps)
    parts = [sweep_part(f, i, args, scans) for i, f in enumerate(sweeps)]
    heads = [heads_part(f, i) for i, f in enumerate(scans)]
    write_text_atomic(output, page(f"zs-sweep report: {root.resolve().name}", parts, heads))
    print(f"wrote {output}")
    return 0


def check_trial(trial: str, sweeps: list[Path]) -> None:
    """--trial names a trial whose checkpoint one of the sweeps kept."""
    from sweep.models import kept_checkpoints

    kept = [model_label(str(k)) for folder in sweeps for k in kept_checkpoints(folder)]
    if trial not in kept:
        raise InputError(f"--trial {trial}: no sweep here kept a checkpoint of that trial; kept: "
                         f"{', '.join(kept) or 'none'}")


def smoke_test(args) -> int:
    """--smoke-test: a tiny sweep folder (sweep.smoke) and its report, with 2 examples and 16 LIME samples."""
    import tempfile

    from sweep.smoke import SMOKE_TRIAL, smoke_sweep

    if args.folder or args.heads:
        raise InputError("--smoke-test makes its own sweep folder; leave out the folder and --heads")
    with tempfile.TemporaryDirectory(prefix="zs-report-smoke-") as tmp:
        folder = smoke_sweep(Path(tmp))
        output = args.output or str(folder / "report.html")
        code = main([str(folder), "--output", output, "--trial", args.trial or SMOKE_TRIAL, "--examples", "2",
                     "--lime-samples", "16"])
        if not args.output:
            print("(a temporary folder, removed; give --output to keep the page)")
        return code


if __name__ == "__main__":
    sys.exit(main())
