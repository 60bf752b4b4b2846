"""sweep.report on real outputs: the sweep and head-scan smoke tests run as the user runs them, the page
rendered from them and opened in headless Chromium (screenshot, console, sorting), and bad input."""
import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from sweep.report import main

# chromium (conftest): Debian's headless Chromium; a test that asks for it is skipped where none is installed

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"}
EXAMPLES, LIME_SAMPLES = 4, 64


def command(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, smoke_sweep) -> Path:
    """OUT/demo-smoke (a copy of sweep.run --smoke-test's, conftest) and OUT/heads (sweep.heads --smoke-test on its
    checkpoint)."""
    out = tmp_path_factory.mktemp("outputs")
    shutil.copytree(smoke_sweep[1], out / "demo-smoke")
    heads = command("sweep.heads", "--smoke-test", "--model", str(out / "demo-smoke"), "--output", str(out / "heads"))
    assert heads.returncode == 0, heads.stdout[-3000:] + heads.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def report(outputs) -> Path:
    path = outputs / "report.html"
    path.write_text("an older report")
    assert main([str(outputs), "--output", str(path), "--examples", str(EXAMPLES),
                 "--lime-samples", str(LIME_SAMPLES)]) == 0
    return path


def rows_of(dom: str, table_id: str) -> list[list[str]]:
    """The data-v keys of every body row of one table, in document order."""
    table = dom[dom.index(f'id="{table_id}"'):]
    body = table[table.index("<tbody>"): table.index("</tbody>")]
    return [re.findall(r'data-v="([^"]*)"', row) for row in body.split("<tr")[1:]]


def header(dom: str, table_id: str) -> list[str]:
    table = dom[dom.index(f'id="{table_id}"'):]
    return re.findall(r'<th data-col="([^"]*)"', table[: table.index("</thead>")])


@pytest.mark.slow
def test_page_is_self_contained_and_has_every_part(report, outputs):
    text = report.read_text(encoding="utf-8")
    assert not list(outputs.glob(".*.tmp"))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert not re.search(r"<(link|iframe)\b|<script\s+src", text, re.I)
    images = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', text)
    assert [alt for alt, _ in images] == ["learning curves", "dev curves and each rule's picks", "heads heatmap"]
    assert "What each selection rule picks" in text and "oracle_tok_map" in text
    for _, uri in images:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    columns = header(text, "leaderboard-0")
    # what rows are compared by leads (the smoke trials differ in their seed only); the rest is behind the toggle
    assert columns[:6] == ["trial_id", "method", "seed", "dev/sent_f1", "test/tok_f1", "test/tok_map"]
    assert re.search(r'<th data-col="status" title="click to sort" class="more">', text)
    assert 'data-table="leaderboard-0">show all ' in text
    for key in ("best_epoch", "kept", "dev/sent_f1", "dev/tok_map", "test/tok_f1", "test/tok_cal_f1"):
        assert key in columns
    assert columns.index("dev/sent_f1") < columns.index("test/tok_f1")
    rows = rows_of(text, "leaderboard-0")
    assert len(rows) == 3 and "random" in [r[0] for r in rows]  # 2 trials (seeds 15, 16) and the floor
    scores = [float(r[columns.index("dev/sent_f1")]) for r in rows]
    assert scores == sorted(scores, reverse=True)  # best first by tune.metric (max)
    assert re.search(r'<tr class="baseline"><td class="t" data-v="random"', text)
    assert "heads-0" in text and "soft_attention" in text
    assert text.count('<div class="example">') == EXAMPLES
    for method in ("soft attention", "head L", f"LIME ({LIME_SAMPLES} samples)"):
        assert text.count(f"<th>{method}") >= EXAMPLES
    assert "scanned on this checkpoint" in text  # the best head came from OUT/heads, scanned on this model
    assert re.search(r'<td class="pos" style="background:rgba\(', text)  # a gold word, shaded


@pytest.mark.slow
def test_chromium_renders_it_without_console_errors(chromium, report, tmp_path):
    shot = tmp_path / "report.png"
    proc = chromium.run(report.as_uri(), tmp_path / "profile", f"--screenshot={shot}",
                        "--window-size=1280,2000")
    assert chromium.console_messages(proc.stderr) == []
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(str(shot))[..., :3]  # [H, W, 3] floats in [0, 1]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.01
    colours = np.unique((pixels.reshape(-1, 3) * 31).round().astype(int), axis=0)
    assert len(colours) > 50, f"only {len(colours)} distinct colours"


@pytest.mark.slow
def test_at_1400_px_tables_fit_without_a_scroll_bar_or_wrapped_headers(chromium, report, tmp_path):
    """Measured in the page as Chromium lays it out (a script added to a copy writes what it sees into the DOM),
    with the leading columns only and after the toggle shows them all (then a table may scroll sideways)."""
    import json

    probe = """<script>function measure(){const t=[...document.querySelectorAll('table.sortable')].map(t=>({
    id:t.id,scroll:t.parentNode.scrollWidth-t.parentNode.clientWidth,lines:[...t.tHead.rows[0].cells]
    .filter(c=>c.offsetParent).map(c=>Math.round(c.getBoundingClientRect().height))}));return t;}
    const before=measure();document.querySelectorAll('button.toggle').forEach(b=>b.click());
    document.body.dataset.layout=JSON.stringify({before,after:measure()});</script></body>"""
    page = tmp_path / "probe.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", probe), encoding="utf-8")
    proc = chromium.run(page.as_uri(), tmp_path / "profile", "--dump-dom", "--window-size=1400,1000")
    assert chromium.console_messages(proc.stderr) == []
    layout = json.loads(re.search(r'data-layout="([^"]*)"', proc.stdout).group(1).replace("&quot;", '"'))
    assert {t["id"] for t in layout["before"]} >= {"leaderboard-0", "heads-0"}
    for t in layout["before"]:
        assert t["scroll"] <= 0, t  # the leading columns fit
        assert len(set(t["lines"])) == 1 and t["lines"][0] < 30, t  # every header on one line
    widened = {t["id"]: len(t["lines"]) for t in layout["after"]}
    assert widened["leaderboard-0"] > len(next(t for t in layout["before"] if t["id"] == "leaderboard-0")["lines"])


@pytest.mark.slow
def test_console_check_catches_a_script_error(chromium, tmp_path):
    """The check above can fail: Chromium's log does show a page's uncaught error."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>notDefined();</script></body></html>")
    proc = chromium.run(page.as_uri(), tmp_path / "profile", "--dump-dom")
    messages = chromium.console_messages(proc.stderr)
    assert messages and "notDefined" in messages[0]


@pytest.mark.slow
def test_clicking_a_header_sorts_the_table(chromium, report, tmp_path):
    def sorted_dom(fragment: str) -> str:
        proc = chromium.run(f"{report.as_uri()}#sort={quote(fragment)}", tmp_path / "profile", "--dump-dom")
        assert chromium.console_messages(proc.stderr) == []
        return proc.stdout

    as_written = [r[0] for r in rows_of(report.read_text(encoding="utf-8"), "leaderboard-0")]  # best first
    dom = sorted_dom("dev/sent_f1:asc")  # numbers sort high to low on the first click, so two clicks
    assert 'data-sorted="dev/sent_f1:asc"' in dom
    column = header(dom, "leaderboard-0").index("dev/sent_f1")
    rows = rows_of(dom, "leaderboard-0")
    scores = [float(r[column]) for r in rows]
    assert scores == sorted(scores) and [r[0] for r in rows] == as_written[::-1]

    dom = sorted_dom("trial_id")  # text: A to Z on the first click
    assert 'data-sorted="trial_id:asc"' in dom
    ids = [r[0] for r in rows_of(dom, "leaderboard-0")]
    assert ids == sorted(ids)

    dom = sorted_dom("map")  # the head table: MAP high to low, empty cells never first
    maps = [r[header(dom, "heads-0").index("map")] for r in rows_of(dom, "heads-0")]
    assert [float(m) for m in maps] == sorted(map(float, maps), reverse=True)


@pytest.mark.slow
def test_a_head_scan_folder_alone_draws_its_heatmap_from_parquet(outputs, tmp_path):
    scan = tmp_path / "scan"
    scan.mkdir()
    shutil.copy(outputs / "heads" / "heads.parquet", scan)  # no heads.png: drawn with sweep.heatmap
    assert main([str(scan)]) == 0
    text = (scan / "report.html").read_text(encoding="utf-8")
    assert '<img alt="heads heatmap" src="data:image/png;base64,' in text
    assert "leaderboard-0" not in text and 'id="heads-0"' in text


@pytest.mark.slow
def test_a_sweep_alone_picks_its_head_on_dev_or_from_heads(outputs, tmp_path):
    alone = tmp_path / "alone"
    shutil.copytree(outputs / "demo-smoke", alone / "demo-smoke", ignore=shutil.ignore_patterns("tune"))
    args = [str(alone), "--examples", "1", "--lime-samples", "0"]
    assert main(args) == 0  # the checkpoint is found at its recorded path; no heads.parquet anywhere near
    text = (alone / "report.html").read_text(encoding="utf-8")
    assert "dev sentences, scanned now" in text and "LIME: skipped" in text
    assert text.count('<div class="example">') == 1 and "heads-0" not in text
    assert main([*args, "--heads", str(outputs / "heads")]) == 0
    assert f"in {(outputs / 'heads' / 'heads.parquet').resolve()}, scanned on this checkpoint" in \
        (alone / "report.html").read_text(encoding="utf-8")


def test_a_folder_without_outputs_is_exit_2_and_writes_nothing(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        proc = command("sweep.report", str(folder), "--output", str(tmp_path / "report.html"), timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert str(folder) in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty", "sub"]


def test_values_are_escaped_and_models_are_labelled(tmp_path):
    """Hand-made outputs (no model): the template escapes every value and names a checkpoint by its trial."""
    import pandas as pd

    trial = "/runs/tune/train_trial_0e5cf_00000_0_seed=9_2026-11-25_17-59-45/checkpoint_000000"
    sweep, scan = tmp_path / "sweep", tmp_path / "scan"
    sweep.mkdir()
    scan.mkdir()
    pd.DataFrame({"trial_id": ["<b>x</b>", "random"], "status": ["TERMINATED", "TERMINATED"],
                  "dev/sent_f1": [0.5, 0.1], "model_name": ["/models/my-encoder", None],
                  "error": ['a "quoted" <error> & more', None]}).to_parquet(sweep / "leaderboard.parquet")
    (sweep / "sweep.yaml").write_text("# python -m sweep.run x.yaml\nname: '<script>alert(1)</script>'\n"
                                      "search:\n  model_name: [/models/my-encoder, minilm]\n")
    heads = pd.DataFrame({"model": [trial, trial, "tiny-random"], "split": "test",
                          "method": ["head", "head", "random"], "layer": [0, 1, None], "head": [0, 0, None],
                          "pooling": ["cls", "cls", None], "threshold_kind": "dev_calibrated",
                          "map": [0.4, 0.6, 0.2]})
    heads.astype({"layer": "Int64", "head": "Int64"}).to_parquet(scan / "heads.parquet")
    assert main([str(tmp_path), "--examples", "0"]) == 0
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "alert(1)</script>" not in text
    assert text.count("<script>") == 1  # the sort script only
    assert 'data-v="&lt;b&gt;x&lt;/b&gt;"' in text and "<b>x</b>" not in text
    assert "a &#34;quoted&#34; &lt;error&gt; &amp; more" in text
    assert f'<td class="t" data-v="0e5cf_00000" title="{trial}">0e5cf_00000</td>' in text
    assert '<td class="t" data-v="my-encoder" title="/models/my-encoder">my-encoder</td>' in text
    assert "Examples: none asked for (--examples 0)." in text
    assert '<img alt="heads heatmap" src="data:image/png;base64,' in text
    assert not re.search(r"\{\{|\{%|\{#", text)


@pytest.mark.slow
def test_sorting_a_tied_column_both_ways_gives_mirror_images(chromium, tmp_path):
    """Tied rows keep the written order high to low and its reverse low to high, whatever was clicked before."""
    import pandas as pd

    (tmp_path / "s").mkdir()
    pd.DataFrame({"trial_id": ["random", "t1", "t2", "t3"], "status": "TERMINATED",
                  "dev/sent_f1": [0.3, 0.0, 0.0, None]}).to_parquet(tmp_path / "s" / "leaderboard.parquet")
    assert main([str(tmp_path), "--examples", "0"]) == 0
    report = tmp_path / "report.html"
    for fragment, order in (("dev/sent_f1", ["random", "t1", "t2", "t3"]),
                            ("dev/sent_f1:asc", ["t2", "t1", "random", "t3"])):  # empty cells stay last
        proc = chromium.run(f"{report.as_uri()}#sort={quote(fragment)}", tmp_path / "profile", "--dump-dom")
        assert chromium.console_messages(proc.stderr) == []
        assert [r[0] for r in rows_of(proc.stdout, "leaderboard-0")] == order
