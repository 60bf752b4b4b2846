"""python -m sweep.report OUT [--output report.html]: one self-contained HTML page for sweep output folders.

OUT is a sweep.run output folder (leaderboard.parquet), a sweep.heads output folder (heads.parquet) or a
folder holding such folders (searched two levels down). The page holds a sortable leaderboard (click a
header; ``#sort=COLUMN`` or ``#sort=COLUMN:asc|desc`` in the URL sorts on load), the learning curves of the
top trials, the heads heatmap, and example test sentences shaded by soft attention, the best head and LIME
from the best kept checkpoint. Images are embedded as PNG data URIs; the page loads nothing else.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.common import Parser, cli
from zs_core.errors import InputError
from zs_core.files import write_text_atomic

BOARD, CURVES, HEADS, SWEEP_YAML = "leaderboard.parquet", "curves.parquet", "heads.parquet", "sweep.yaml"
FINISHED = ("TERMINATED", "STOPPED_EARLY")
HIDDEN_METRICS = ("n_sentences", "truncated_words")
HEAD_COLUMNS = ("model", "split", "method", "pooling", "layer", "head", "threshold_kind", "threshold", "map", "f1",
                "precision", "recall", "f05", "auroc", "corr", "n_sentences")
SKIP_DIRS = ("tune",)


def parse_args(argv):
    p = Parser(prog="python -m sweep.report", description=__doc__.splitlines()[0])
    p.add_argument("folder", help="a sweep.run or sweep.heads output folder, or a folder holding them")
    p.add_argument("--output", default=None, help="the HTML file to write (default FOLDER/report.html)")
    p.add_argument("--examples", type=int, default=8, help="positive test sentences to show (0: none)")
    p.add_argument("--heads", default=None, help="a heads.parquet (or its folder) that names the best head")
    p.add_argument("--lime-samples", type=int, default=256, help="LIME perturbations per sentence (0: no LIME)")
    return p.parse_args(argv)


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


def read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot be read as Parquet ({str(err).strip().splitlines()[0]})") from None


def read_sweep_yaml(folder: Path) -> dict:
    import yaml

    path = folder / SWEEP_YAML
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    doc["_command"] = text.splitlines()[0].lstrip("# ") if text.startswith("#") else ""
    return doc


def cell(value) -> tuple[str, str]:
    """(sort key, shown text) of one table cell; missing values have an empty key and sort last."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "", ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value)), str(bool(value)).lower()
    if isinstance(value, float):
        return repr(value), f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    return str(value), str(value)


def table_html(frame: pd.DataFrame, columns: list[str], table_id: str, row_class=None) -> str:
    """A sortable table; ``row_class(row) -> str`` marks rows (the random baseline, kept trials)."""
    columns = [c for c in columns if c in frame.columns]
    head = "".join(f'<th data-col="{html.escape(c)}" title="click to sort">'
                   f'{html.escape(c).replace("/", "/<wbr>").replace("_", "_<wbr>")}</th>' for c in columns)
    body = []
    for _, row in frame.iterrows():
        cls = row_class(row) if row_class else ""
        cells = "".join(f'<td{"" if _number(k) else " class=t"} data-v="{html.escape(k)}" title="{html.escape(t)}">'
                        f'{html.escape(_short(t))}</td>' for k, t in (cell(row[c]) for c in columns))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return (f'<div class="scroll"><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _number(key: str) -> bool:
    try:
        return key == "" or float(key) == float(key)
    except ValueError:
        return False


def _short(text: str, most: int = 48) -> str:
    return text if len(text) <= most else "…" + text[-(most - 1):]


def best_checkpoint(folder: Path, board: pd.DataFrame, metric: str, mode: str) -> Path | None:
    """The best finished trial's kept checkpoint (its recorded path, else found under the folder)."""
    from zs_core.checkpoint import CONFIG_FILE, is_checkpoint

    rows = board[board["checkpoint"].notna() & board["status"].isin(FINISHED)] if "checkpoint" in board else board.iloc[:0]
    if metric in rows:
        rows = rows.sort_values(metric, ascending=mode == "min", na_position="last")
    for _, row in rows.iterrows():
        path = Path(str(row["checkpoint"]))
        for candidate in (path, folder / path):
            if is_checkpoint(candidate):
                return candidate
        for found in sorted(folder.rglob(CONFIG_FILE)):
            if str(row["trial_id"]) in str(found) and is_checkpoint(found.parent):
                return found.parent
    return None


def examples_section(folder: Path, doc: dict, board: pd.DataFrame, args, scans: list[Path]) -> str:
    from sweep.report_plots import example_scores, examples_html
    from zs_core.data import data_spec_from_dict

    if args.examples <= 0:
        return "<p class=note>Examples: none asked for (--examples 0).</p>"
    tune = doc.get("tune") or {}
    checkpoint = best_checkpoint(folder, board, tune.get("metric", "dev/sent_f1"), tune.get("mode", "max"))
    if checkpoint is None or "data" not in doc:
        why = "no kept checkpoint was found" if checkpoint is None else f"{SWEEP_YAML} names no data"
        return f"<p class=note>Examples skipped: {why}.</p>"
    if args.heads:
        heads = Path(args.heads)
        heads = [heads / HEADS if heads.is_dir() else heads]
    else:  # below the sweep folder, beside it, or anywhere in the reported tree
        near = [*folder.glob(f"*/{HEADS}"), *folder.parent.glob(f"*/{HEADS}"), *(s / HEADS for s in scans)]
        heads = list(dict.fromkeys(p.resolve() for p in near if p.is_file()))
    try:
        spec = data_spec_from_dict(doc["data"], str(folder / SWEEP_YAML))
        examples = example_scores(checkpoint, spec, args.examples, args.lime_samples, heads, bool(args.heads))
    except (InputError, OSError, ValueError, RuntimeError, KeyError) as err:
        print(f"warning: {folder}: examples skipped: {err}", file=sys.stderr)
        return f"<p class=note>Examples skipped: {html.escape(str(err))}</p>"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in examples.notes)
    return (f"<p>Checkpoint <code>{html.escape(str(checkpoint))}</code>. Each method's shading runs over "
            f"the sentence's own score range (beside its name; hover a word for its score): "
            f"<span class=key style='background:rgba(214,39,40,.8)'>highest</span> "
            f"<span class=key style='background:rgba(214,39,40,.25)'>lower</span> lowest; signed scores "
            f"(LIME) keep 0 white: <span class=key style='background:rgba(31,119,180,.6)'>negative</span>; "
            f"gold positive words are <span class=pos>bold and underlined</span>.</p>"
            f"<ul class=note>{notes}</ul>{examples_html(examples)}")


def sweep_section(folder: Path, index: int, args, scans: list[Path]) -> str:
    from sweep.report_plots import TOP_CURVES, curves_uri

    board, doc = read_parquet(folder / BOARD), read_sweep_yaml(folder)
    tune = doc.get("tune") or {}
    metric, mode = tune.get("metric", "dev/sent_f1"), tune.get("mode", "max")
    search = list(doc.get("search") or {})
    if metric in board:
        board = board.sort_values(metric, ascending=mode == "min", na_position="last")
    board = board.assign(kept=board["checkpoint"].notna() if "checkpoint" in board else False)
    metrics = [c for c in board.columns if c.startswith(("dev/", "test/")) and not c.endswith(HIDDEN_METRICS)]
    metrics.sort(key=lambda c: (not c.startswith("dev/"), c != metric))
    error = ["error"] if "error" in board and board["error"].notna().any() else []
    columns = ["trial_id", "status", "seed", *search, "best_epoch", "kept", *metrics, *error]
    counts = ", ".join(f"{n} {s}" for s, n in board["status"].value_counts().items()) if "status" in board else ""
    random_row = board[board["trial_id"] == "random"] if "trial_id" in board else board.iloc[:0]
    baseline = random_row[metric].iloc[0] if metric in random_row and len(random_row) else None
    parts = [f'<h2 id="sweep-{index}">Sweep: {html.escape(str(doc.get("name", folder.name)))}</h2>',
             f"<p><code>{html.escape(str(folder))}</code><br>{html.escape(doc.get('_command', ''))}<br>"
             f"Model selection by <b>{html.escape(metric)}</b> ({mode}); {len(board)} rows: {counts}."
             f"{_provenance(board)}</p>",
             "<h3>Leaderboard</h3><p class=note>Click a column header to sort. The random baseline row is "
             "shaded yellow; kept = the trial kept its checkpoint and was scored on test.</p>",
             table_html(board, columns, f"leaderboard-{index}",
                        lambda r: "baseline" if r.get("trial_id") == "random" else ("kept" if r["kept"] else ""))]
    by_config = folder / "leaderboard_by_config.parquet"
    if search and by_config.is_file():
        grouped = read_parquet(by_config)
        stats = [c for m in (metric, "dev/tok_map", "test/tok_f1", "test/tok_map") for c in (f"{m}_mean", f"{m}_std")]
        parts += ["<h3>By configuration (over seeds)</h3>",
                  table_html(grouped, [*search, "n", "seeds", *stats], f"by-config-{index}")]
    parts.append(f"<h3>Learning curves: top {TOP_CURVES} trials by {html.escape(metric)}</h3>")
    uri = None
    if (folder / CURVES).is_file():
        ranked = board[board["trial_id"] != "random"]["trial_id"].astype(str).tolist()
        uri = curves_uri(read_parquet(folder / CURVES), ranked, metric, baseline)
    parts.append(f'<img alt="learning curves" src="{uri}">' if uri else f"<p class=note>No {CURVES} to draw.</p>")
    parts += ["<h3>Example test sentences</h3>", examples_section(folder, doc, board, args, scans)]
    return "\n".join(parts)


def heads_section(folder: Path, index: int) -> str:
    from sweep.report_plots import heatmap_uri

    frame = read_parquet(folder / HEADS)
    heads = frame[frame["method"] == "head"].sort_values("map", ascending=False)
    others = frame[frame["method"] != "head"]
    shown = pd.concat([heads.head(10), others], ignore_index=True)
    picture = (f'<img alt="heads heatmap" src="{heatmap_uri(folder, frame)}">' if len(heads)
               else "<p class=note>No head rows to draw.</p>")
    return "\n".join([
        f'<h2 id="heads-{index}">Head scan</h2><p><code>{html.escape(str(folder))}</code>{_provenance(frame)}</p>',
        "<h3>MAP of every layer x head (best boxed in red)</h3>", picture,
        "<h3>Top 10 heads, soft attention and random baseline</h3>",
        table_html(shown, list(HEAD_COLUMNS), f"heads-{index}",
                   lambda r: "baseline" if r.get("method") == "random" else "")])


def _provenance(frame: pd.DataFrame) -> str:
    if "created_at" not in frame or frame["created_at"].dropna().empty:
        return ""
    versions = ", ".join(f"{c[8:]} {frame[c].dropna().iloc[0]}" for c in frame.columns
                         if c.startswith("version_") and frame[c].dropna().any())
    sha = str(frame["git_sha"].dropna().iloc[0])[:10] if "git_sha" in frame and frame["git_sha"].notna().any() else "?"
    return (f"<br><span class=note>Written {html.escape(str(frame['created_at'].dropna().iloc[0]))}, "
            f"git {html.escape(sha)}; {html.escape(versions)}</span>")


def page(title: str, sections: list[str]) -> str:
    from sweep.report_plots import CSS, SCRIPT

    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(sections)
            + f"\n<script>{SCRIPT}</script></body></html>\n")


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(args.folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; expected a sweep.run or sweep.heads output folder")
    sweeps, scans = find_outputs(root)
    if not sweeps and not scans:
        raise InputError(f"{root}: holds neither {BOARD} nor {HEADS} (nor do its subfolders); expected a "
                         f"sweep.run or sweep.heads output folder")
    output = Path(args.output) if args.output else root / "report.html"
    if output.is_dir():
        raise InputError(f"--output {output}: is a folder, expected the HTML file to write")
    if args.examples < 0 or args.lime_samples < 0:
        raise InputError("--examples and --lime-samples: expected 0 or a positive integer")
    sections = [sweep_section(f, i, args, scans) for i, f in enumerate(sweeps)]
    sections += [heads_section(f, i) for i, f in enumerate(scans)]
    write_text_atomic(output, page(f"zs-sweep report: {root.resolve().name}", sections))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
