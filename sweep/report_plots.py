"""The report's look: learning curves and the heads heatmap (PNG data URIs), example test sentences with
every word shaded by its score (soft attention, the best attention head, LIME), the page's CSS and sort script."""
from __future__ import annotations

import base64
import html
import io
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from zs_core.data import DataSpec, Sentence

TOP_CURVES = 5
POSITIVE_RGB, NEGATIVE_RGB = "214,39,40", "31,119,180"  # red: the score points at the word; blue: against
MOST_ALPHA = 0.8


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_uri(fig) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return png_uri(buffer.getvalue())


def heatmap_uri(folder: Path, frame: pd.DataFrame) -> str:
    """heads.png of a head-scan folder, or the same picture drawn from heads.parquet when it is missing."""
    from sweep.heatmap import plot_heads

    if (folder / "heads.png").is_file():
        return png_uri((folder / "heads.png").read_bytes())
    with tempfile.TemporaryDirectory(prefix="zs-report-") as tmp:
        return png_uri(plot_heads(frame, Path(tmp) / "heads.png").read_bytes())


def curves_uri(curves: pd.DataFrame, trial_ids: list[str], metric: str, baseline: float | None) -> str | None:
    """Dev ``metric`` and train loss per epoch of the given trials (best first); None when nothing to draw."""
    plt = _pyplot()
    shown = [t for t in trial_ids if t in set(curves["trial_id"])][:TOP_CURVES]
    if not shown or "epoch" not in curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    panels = ((axes[0], metric, f"dev: {metric}"), (axes[1], "train/loss", "train loss"))
    for trial_id in shown:
        part = curves[curves["trial_id"] == trial_id].sort_values("epoch")
        seed = part["seed"].iloc[0] if "seed" in part else None
        label = trial_id if seed is None or pd.isna(seed) else f"{trial_id} (seed {int(seed)})"
        for ax, column, _ in panels:
            if column in part:
                ax.plot(part["epoch"], part[column], marker="o", label=label)
    if baseline is not None and pd.notna(baseline):
        axes[0].axhline(baseline, color="grey", linestyle="--", label="random baseline")
    epochs = list(range(1, math.ceil(curves["epoch"].max()) + 1))  # evaluations may fall between epochs
    for ax, _, title in panels:
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return figure_uri(fig)


@dataclass
class Examples:
    sentences: list[Sentence]
    probs: list[float]
    columns: dict[str, list[list[float]]] = field(default_factory=dict)  # method name -> word scores
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HeadChoice:
    layer: int
    head: int
    pooling: str
    why: str  # where the choice came from, for the page


def head_from_files(paths: list[Path], checkpoint: Path, base_model: str, explicit: bool) -> HeadChoice | None:
    """The best head (by MAP) of heads.parquet rows scanned on this checkpoint, else on its base encoder;
    with ``explicit`` (--heads) the file's best head whatever model it was scanned on."""
    frames = [pd.read_parquet(p).assign(_file=str(p)) for p in paths]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty or "layer" not in rows:
        return None
    rows = rows[rows["layer"].notna() & rows["map"].notna()]
    same = rows["model"].map(lambda m: _same_path(m, checkpoint))
    for chosen, what in ((rows[same], "this checkpoint"), (rows[rows["model"] == base_model], base_model),
                         (rows if explicit else rows.iloc[:0], "the model named in the file")):
        if not chosen.empty:
            best = chosen.loc[chosen["map"].idxmax()]
            why = (f"best {best['split']} MAP ({best['map']:.3f}) in {best['_file']}, scanned on {what}")
            return HeadChoice(int(best["layer"]), int(best["head"]), str(best["pooling"]), why)
    return None


def _same_path(model: str, checkpoint: Path) -> bool:
    try:
        return Path(str(model)).resolve() == checkpoint.resolve()
    except OSError:
        return False


def head_on_dev(encoder, tokenizer, dev: list[Sentence], max_len: int, lowercase: bool, batch: int) -> HeadChoice:
    """Scan every head over the labelled dev split (one pass per batch) and take the best by MAP."""
    import numpy as np

    from zs_core.batching import encode
    from zs_core.headscan import scan_split
    from zs_core.scores import POOLINGS

    items, _ = encode(dev, tokenizer, max_len, lowercase=lowercase)
    acc = scan_split(encoder, tokenizer, items, [list(s.gold) for s in dev], batch, "cpu", POOLINGS)
    average_precision = acc.map()                                                       # [P, L, H]
    p, layer, head = np.unravel_index(int(np.argmax(average_precision)), average_precision.shape)
    why = f"best dev MAP ({average_precision[p, layer, head]:.3f}) over {len(dev)} dev sentences, scanned now"
    return HeadChoice(int(layer), int(head), POOLINGS[p], why)


def example_scores(checkpoint: Path, spec: DataSpec, n: int, lime_samples: int, heads: list[Path],
                   explicit_heads: bool, batch: int = 32) -> Examples:
    """The first ``n`` positive test sentences, scored by soft attention, the best head and LIME."""
    from zs_core.attribution import lime_word_scores
    from zs_core.batching import encode
    from zs_core.checkpoint import load_checkpoint
    from zs_core.data import load_splits
    from zs_core.encoders import layer_head_counts
    from zs_core.scores import head_word_scores
    from zs_core.scores import predict

    model, tokenizer, cfg = load_checkpoint(checkpoint, attentions=True)
    splits = load_splits(spec, ("dev", "test"))
    labelled = [s for s in splits["test"] if s.labels is not None]
    split = "test" if labelled else "dev"
    chosen = [s for s in (labelled or splits["dev"]) if s.label][:n]
    max_len, lowercase = cfg.data.max_seq_length, cfg.data.lowercase
    items, _ = encode(chosen, tokenizer, max_len, lowercase=lowercase)
    probs, soft = predict(model, items, tokenizer, batch)
    out = Examples(chosen, probs)
    if split == "dev":
        out.notes.append("The test split has no labels: the examples are positive dev sentences.")
    if soft is None:
        out.notes.append("Soft attention: this model has a plain classifier head, so it has no word scores.")
    else:
        out.columns["soft attention"] = soft
    choice = head_from_files(heads, checkpoint, cfg.model.model_name, explicit_heads)
    layers, n_heads = layer_head_counts(model.encoder)
    if choice is not None and not (choice.layer < layers and choice.head < n_heads):
        out.notes.append(f"The head L{choice.layer} H{choice.head} ({choice.why}) does not exist in this "
                         f"{layers} x {n_heads} model; scanned dev instead.")
        choice = None
    if choice is None:
        dev = [s for s in splits["dev"] if s.labels is not None]
        choice = head_on_dev(model.encoder, tokenizer, dev, max_len, lowercase, batch) if dev else None
    if choice is None:
        out.notes.append("Best head: skipped (no heads.parquet and no labelled dev split to pick a head on).")
    else:
        name = f"head L{choice.layer} H{choice.head} {choice.pooling}"
        out.columns[name] = head_word_scores(model.encoder, items, tokenizer, choice.layer, choice.head,
                                             choice.pooling, batch)
        out.notes.append(f"{name}: {choice.why}.")
    if lime_samples < 2:
        out.notes.append("LIME: skipped (--lime-samples below 2).")
    elif tokenizer.mask_token_id is None:
        out.notes.append("LIME: skipped (the tokenizer has no mask token to remove words with).")
    else:
        out.columns[f"LIME ({lime_samples} samples)"] = lime_word_scores(model, items, tokenizer, lime_samples)
    return out


def scale(row: list[float]) -> tuple[float, float]:
    """(zero point, span) of one method's scores in one sentence: scores that are all >= 0 run from the
    sentence's lowest (white) to its highest (darkest), so a constant offset (attention heads) does not
    wash everything out; signed scores (LIME) keep 0 as white and scale by the largest |score|."""
    finite = [x for x in row if x == x and abs(x) != float("inf")] or [0.0]
    if min(finite) >= 0:
        return min(finite), max(finite) - min(finite)
    return 0.0, max(abs(x) for x in finite)


def shade(score: float, zero: float, span: float) -> str:
    """CSS background of one word: red for scores above ``zero``, blue below, alpha by distance / span."""
    if not span or score != score:
        return "transparent"
    alpha = min(abs(score - zero) / span, 1.0) * MOST_ALPHA
    return f"rgba({POSITIVE_RGB if score >= zero else NEGATIVE_RGB},{alpha:.3f})"


def _chunks(words: tuple[str, ...], most: int = 110) -> list[range]:
    """Word ranges of at most ~``most`` characters, so a long sentence wraps instead of scrolling."""
    out, start, width = [], 0, 0
    for i, word in enumerate(words):
        if i > start and width + len(word) + 2 > most:
            out.append(range(start, i))
            start, width = i, 0
        width += len(word) + 2
    return out + [range(start, len(words))]


def examples_html(examples: Examples) -> str:
    """Per sentence a row per method and a column per word (wrapped in pieces); gold positive words bold."""
    blocks = []
    for k, sentence in enumerate(examples.sentences):
        words, gold = sentence.words, sentence.gold
        scored = [(name, scores[k], *scale(scores[k])) for name, scores in examples.columns.items()]
        tables = []
        for part in _chunks(words):
            rows = ["<tr><th>gold</th>" + "".join(
                f'<td class="{"pos" if gold[i] else ""}">{html.escape(words[i])}</td>' for i in part) + "</tr>"]
            for name, row, zero, span in scored:
                cells = "".join(f'<td class="{"pos" if gold[i] else ""}" style="background:'
                                f'{shade(row[i], zero, span)}" title="{row[i]:.4g}">{html.escape(words[i])}</td>'
                                for i in part)
                low, high = min(row, default=0.0), max(row, default=0.0)
                rows.append(f"<tr><th>{html.escape(name)} <small>{low:.3g} to {high:.3g}</small></th>{cells}</tr>")
            tables.append(f'<table class="words">{"".join(rows)}</table>')
        blocks.append(f'<div class="example"><div class="meta">#{k + 1} &middot; P(positive) = '
                      f'{examples.probs[k]:.3f} &middot; {sum(gold)} gold positive of {len(gold)} words</div>'
                      f'{"".join(tables)}</div>')
    return "\n".join(blocks)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 12px}h2{font-size:19px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:22px 0 8px}code{font-size:12px;background:#f3f3f3;padding:1px 4px;border-radius:3px}
.note{color:#666;font-size:12.5px}.scroll{overflow-x:auto;max-width:100%}img{max-width:100%;border:1px solid #eee}
table.sortable{border-collapse:collapse;font-size:12px;white-space:nowrap}
table.sortable th{position:sticky;top:0;background:#2f4858;color:#fff;cursor:pointer;padding:4px 6px;
 white-space:normal;min-width:48px;max-width:90px;vertical-align:bottom;text-align:left;font-weight:600}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
table.sortable td{padding:3px 6px;border-bottom:1px solid #e5e5e5;text-align:right}
table.sortable td.t{text-align:left}table.sortable td:first-child{font-family:ui-monospace,monospace}
table.sortable tbody tr{background:#fff}table.sortable tbody tr:nth-child(even){background:#f7f9fb}
table.sortable td:first-child,table.sortable th:first-child{position:sticky;left:0;z-index:1}table.sortable td:first-child{background:inherit}table.sortable th:first-child{z-index:2}table.sortable tr.kept td:first-child{font-weight:700}
table.sortable tr.baseline{background:#fff1c2 !important;font-style:italic}
.example{margin:10px 0 14px}.example .meta{font-size:12px;color:#555;margin-bottom:2px}
table.words{border-collapse:separate;border-spacing:2px 3px;font-size:13.5px;margin-bottom:4px}
table.words th small{color:#999;font-size:10.5px}table.words th{text-align:right;min-width:170px;font-weight:500;color:#444;font-size:12px;padding-right:8px;white-space:nowrap}
table.words td{padding:1px 4px;border-radius:3px;white-space:nowrap}
.pos{font-weight:700;text-decoration:underline}table.words tr:first-child td.pos{background:#c7e9c0}
.key{padding:0 5px;border-radius:3px}
"""

# Click a header: numbers sort high to low first, text A to Z; a second click reverses. Empty cells stay
# last. The URL fragment #sort=COLUMN (or COLUMN:asc / COLUMN:desc) clicks that header of every table on load.
SCRIPT = """
function sortBy(th){const t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,rows=[...b.rows];
const v=r=>r.cells[i].dataset.v,num=rows.every(r=>v(r)===''||!isNaN(Number(v(r))));
const desc=th.classList.contains('desc')?false:th.classList.contains('asc')?true:num;
rows.sort((x,y)=>{const a=v(x),c=v(y);if(a===''||c==='')return(a==='')-(c==='');
const d=num?Number(a)-Number(c):a.localeCompare(c);return desc?-d:d;});
rows.forEach(r=>b.appendChild(r));[...th.parentNode.cells].forEach(h=>h.classList.remove('asc','desc'));
th.classList.add(desc?'desc':'asc');t.dataset.sorted=th.dataset.col+(desc?':desc':':asc');}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
function sortFromHash(){const m=/^#sort=(.+?)(?::(asc|desc))?$/.exec(decodeURIComponent(location.hash));
if(!m)return;document.querySelectorAll('table.sortable th').forEach(th=>{if(th.dataset.col!==m[1])return;
th.click();if(m[2]&&!th.classList.contains(m[2]))th.click();});}
window.addEventListener('hashchange',sortFromHash);sortFromHash();
"""
