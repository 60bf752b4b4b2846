"""sweep.predict and sweep.evaluate (the seed's stages 2 and 3): exact metrics, round trips, bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from sweep import evaluate, predict
from zs_core.config import DataConfig
from zs_core.data import read_tsv
from zs_core.protocol import ROW_KEYS

ROOT = Path(__file__).resolve().parents[1]
SEED_CONFIGS = ROOT.parent / "shared" / "seed_configs"


def write(path: Path, sentences: list[list[tuple[str, object]]]) -> Path:
    path.write_text("".join("".join(f"{w}\t{x}\n" for w, x in s) + "\n" for s in sentences), encoding="utf-8")
    return path


def run_evaluate(capsys, *argv) -> dict:
    """sweep.evaluate's JSON, with its fixed row's metrics at the top level and the dev-calibrated row's
    as cal_* (the printed object itself is under "printed")."""
    assert evaluate.main([str(a) for a in argv]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = {r["threshold_kind"]: r for r in printed["rows"]}
    assert [tuple(r) for r in printed["rows"]] == [ROW_KEYS] * len(rows)
    cal = {f"cal_{k}": v for k, v in rows.get("dev_calibrated", {}).items()}
    return {**printed, **rows["fixed"], **cal, "printed": printed}


def bad(capsys, main, *argv) -> str:
    """The command fails with exit 2 and one line on stderr; returns that line."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def task(marker_task):
    return marker_task  # conftest: {"data", "checkpoint", "marker"}, trained once per session


# --- evaluate ---------------------------------------------------------------------------------------

def test_evaluate_hand_computed(tmp_path, capsys):
    # s0: labels 1 0 1 0, scores .9 .6 .4 .1; s1: labels 0 0 1, scores .7 .2 .5 (threshold .5)
    # tp 2, fp 2, fn 1: P 1/2, R 2/3, F1 4/7, F0.5 10/19; AP s0 = 5/6, s1 = 1/2 -> MAP 2/3
    gold = write(tmp_path / "g.tsv", [[("a", "i"), ("b", "c"), ("c", "i"), ("d", "c")],
                                      [("e", "c"), ("f", "c"), ("g", "i")]])
    preds = write(tmp_path / "p.tsv", [[("a", .9), ("b", .6), ("c", .4), ("d", .1)],
                                       [("e", .7), ("f", .2), ("g", .5)]])
    out = tmp_path / "sub" / "m.json"
    pair = ["--preds", preds, "--gold", gold, "--positive-labels", "i"]
    m = run_evaluate(capsys, *pair, "--json-out", out)
    assert m["precision"] == pytest.approx(1 / 2) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(4 / 7) and m["f05"] == pytest.approx(10 / 19)
    assert m["map"] == pytest.approx(2 / 3) and m["threshold"] == 0.5
    # corr: Pearson of gold 1 0 1 0 0 0 1 and the scores: cov 2.4/7, variances 12/7 and 3.28/7
    assert m["corr"] == pytest.approx(2.4 / np.sqrt(12 * 3.28))
    assert (m["n_sentences"], m["n_tokens"]) == (2, 7)
    assert json.loads(out.read_text()) == m["printed"]
    # top 1 per sentence: s0 keeps .9 (+), s1 keeps .7 (-): tp 1, fp 1, fn 2 -> P 1/2, R 1/3
    m1 = run_evaluate(capsys, *pair, "--top-k", 1)
    assert (m1["precision"], m1["recall"]) == (pytest.approx(1 / 2), pytest.approx(1 / 3))
    # calibrated on the same pair: F1 = 2tp / (predicted + 3) at .9 .7 .6 .5 .4 .2 .1 is
    # 2/4, 2/5, 2/6, 4/7, 6/8, 6/9, 6/10 -> threshold .4: tp 3, fp 2: P 3/5, R 1, F1 3/4
    mc = run_evaluate(capsys, *pair, "--calibrate-on", preds, gold)
    assert mc["cal_threshold"] == pytest.approx(0.4) and mc["cal_f1"] == pytest.approx(3 / 4)
    assert mc["cal_precision"] == pytest.approx(3 / 5) and mc["cal_recall"] == pytest.approx(1.0)
    assert mc["f1"] == pytest.approx(4 / 7)  # the fixed-threshold numbers stay beside the calibrated ones


def test_evaluate_matches_sklearn_on_random_files(tmp_path, capsys):
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 12, size=40)
    labels = [rng.integers(0, 2, size=n) for n in lengths]
    scores = [rng.random(n) for n in lengths]
    words = [[f"w{i}_{j}" for j in range(n)] for i, n in enumerate(lengths)]
    gold = write(tmp_path / "g.tsv", [list(zip(w, y)) for w, y in zip(words, labels)])
    preds = write(tmp_path / "p.tsv", [list(zip(w, s)) for w, s in zip(words, scores)])
    m = run_evaluate(capsys, "--preds", preds, "--gold", gold, "--threshold", 0.3)
    y, s = np.concatenate(labels), np.concatenate(scores)
    p, r, f, _ = precision_recall_fscore_support(y, s >= 0.3, average="binary", zero_division=0)
    _, _, f05, _ = precision_recall_fscore_support(y, s >= 0.3, beta=0.5, average="binary", zero_division=0)
    ap = [average_precision_score(lab, sc) for lab, sc in zip(labels, scores) if lab.any()]
    assert (m["precision"], m["recall"], m["f1"], m["f05"]) == pytest.approx((p, r, f, f05))
    assert m["map"] == pytest.approx(np.mean(ap))
    assert (m["n_sentences"], m["n_tokens"]) == (40, int(lengths.sum()))
    best = max(precision_recall_fscore_support(y, s >= t, average="binary", zero_division=0)[2] for t in s)
    mc = run_evaluate(capsys, "--preds", preds, "--gold", gold, "--calibrate-on", preds, gold)
    assert mc["cal_f1"] == pytest.approx(best)


GOLD = [[("a", 1), ("b", 0)], [("c", 0), ("d", 1), ("e", 0)], [("f", 0)]]


@pytest.mark.parametrize("case, preds, expect", [
    ("missing sentence", GOLD[:2], "p.tsv:8 (end of file) vs {gold}:8: predictions and gold differ: 2 sentences"),
    ("extra word", [GOLD[0], GOLD[1] + [("x", 0)], GOLD[2]],
     "p.tsv:7 vs {gold}:7 (end of sentence): predictions and gold differ: sentence 2 (4 vs 3 words), word 4"),
    ("other word", [GOLD[0], [("c", 0), ("D", 1), ("e", 0)], GOLD[2]],
     "p.tsv:5 vs {gold}:5: predictions and gold differ: sentence 2 (3 vs 3 words), word 2: 'D' vs 'd'"),
    ("non-number score", [GOLD[0], [("c", 0), ("d", "high"), ("e", 0)], GOLD[2]],
     "p.tsv:5: score 'high' is not a number"),
    ("NaN score", [GOLD[0], [("c", 0), ("d", "nan"), ("e", 0)], GOLD[2]],
     "p.tsv:5: score 'nan' is not a finite number"),
])
def test_evaluate_bad_predictions(tmp_path, capsys, case, preds, expect):
    gold = write(tmp_path / "g.tsv", GOLD)
    p = write(tmp_path / "p.tsv", preds)
    out = tmp_path / "m.json"
    err = bad(capsys, evaluate.main, "--preds", p, "--gold", gold, "--json-out", out)
    assert expect.format(gold=gold) in err
    assert not out.exists()


def test_evaluate_gold_without_labels(tmp_path, capsys):
    gold = tmp_path / "g.tsv"
    gold.write_text("a\nb\n\n", encoding="utf-8")
    p = write(tmp_path / "p.tsv", [[("a", 1), ("b", 0)]])
    err = bad(capsys, evaluate.main, "--preds", p, "--gold", gold)
    assert "g.tsv:1: expected word<TAB>label, got 1 column" in err
    gold.write_text("a\tB-x\nb\tO\n\n", encoding="utf-8")  # categories but no --positive-labels
    err = bad(capsys, evaluate.main, "--preds", p, "--gold", gold, "--json-out", tmp_path / "m")
    assert "g.tsv:1: label 'B-x' is not a number" in err
    assert not (tmp_path / "m").exists()


# --- predict ----------------------------------------------------------------------------------------

METHOD_ARGS = {"soft_attention": [], "head": ["--layer", 1, "--head", 2, "--pooling", "cls"],
               "lime": ["--lime-samples", 64, "--lime-batch", 32], "ig": ["--ig-steps", 8], "random": []}


@pytest.mark.parametrize("method", list(METHOD_ARGS))
def test_predict_evaluate_round_trip(task, tmp_path, capsys, method):
    data = ["--data-dir", task["data"], "--positive-labels", "i", "--split", "dev"]
    out = tmp_path / "p.tsv"
    argv = ["--model", task["checkpoint"], "--method", method, *data, "--output", out, *METHOD_ARGS[method]]
    assert predict.main([str(a) for a in argv]) == 0
    gold = read_tsv(Path(task["data"]) / "dev.tsv", ("i",))
    preds = read_tsv(out)
    assert [p.words for p in preds] == [g.words for g in gold]
    table = pd.read_parquet(out.with_suffix(".parquet"))
    assert list(table.columns) == ["sentence", "word_index", "word", "score"]
    assert table["score"].tolist() == [x for p in preds for x in p.labels]
    assert table["word"].tolist() == [w for g in gold for w in g.words]
    capsys.readouterr()
    m = run_evaluate(capsys, "--preds", out, *data, "--calibrate-on", out)
    assert m["n_sentences"] == len(gold) and 0.0 <= m["map"] <= 1.0
    assert m["method"] == m["cal_method"] == method  # from the Parquet copy's metadata
    if method == "head":
        assert (m["layer"], m["head"], m["pooling"]) == (1, 2, "cls")
    if method in ("soft_attention", "lime", "ig"):
        assert m["map"] > 0.9  # the marker task is easy


def test_predict_evaluate_on_a_sample(tmp_path, capsys):
    """--sample N: the same fixed random N sentences in sweep.predict and sweep.evaluate (dev for calibration)."""
    from zs_core.data import load_splits

    for split in ("dev", "test"):
        argv = ["--method", "random", "--seed", "3", "--sample", "7", "--split", split,
                "--output", tmp_path / f"{split}.tsv"]
        assert predict.main([str(a) for a in argv]) == 0
    expected = load_splits(DataConfig(sample={"test": 7}), ("test",))["test"]
    assert [p.words for p in read_tsv(tmp_path / "test.tsv")] == [s.words for s in expected]
    capsys.readouterr()
    m = run_evaluate(capsys, "--preds", tmp_path / "test.tsv", "--data", "wnut16", "--sample", "7",
                     "--calibrate-on", tmp_path / "dev.tsv")
    assert m["n_sentences"] == 7 and 0.0 <= m["cal_f1"] <= 1.0
    message = bad(capsys, evaluate.main, "--preds", tmp_path / "test.tsv", "--data", "wnut16")
    assert str(tmp_path / "test.tsv") in message  # without --sample the gold is all 240: the mismatch is named
    assert bad(capsys, evaluate.main, "--preds", tmp_path / "test.tsv", "--data", "wnut16", "--sample", "0") == \
        "error: --sample 0: expected a positive integer"


def test_predict_head_on_an_encoder_name(tmp_path, capsys):
    out = tmp_path / "h.tsv"
    argv = ["--model", "tiny-random", "--method", "head", "--layer", "0", "--head", "3", "--limit", "5",
            "--output", str(out)]
    assert predict.main(argv) == 0
    assert len(read_tsv(out)) == 5


def test_predict_bad_input_writes_nothing(task, tmp_path, capsys):
    no_mask = tmp_path / "no_mask"
    shutil.copytree(task["checkpoint"], no_mask)
    from zs_core.encoders import load_tokenizer

    tokenizer = load_tokenizer(str(no_mask / "encoder"))
    tokenizer.mask_token = None
    tokenizer.save_pretrained(no_mask / "encoder")
    out = tmp_path / "p.tsv"
    base = ["--data-dir", task["data"], "--positive-labels", "i", "--output", out]
    cases = {
        "needs --layer and --head": ["--model", task["checkpoint"], "--method", "head", "--head", 1],
        "--layer 2: out of range": ["--model", task["checkpoint"], "--method", "head", "--layer", 2, "--head", 0],
        "--head -1: out of range": ["--model", "tiny-random", "--method", "head", "--layer", 0, "--head", -1],
        "no mask token": ["--model", no_mask, "--method", "lime"],
        "not a zs-sweep checkpoint": ["--model", "tiny-random", "--method", "ig"],
        "expected one of": ["--model", task["checkpoint"], "--method", "shap"],
    }
    for expect, argv in cases.items():
        assert expect in bad(capsys, predict.main, *argv, *base)
        assert not out.exists() and not out.with_suffix(".parquet").exists()


@pytest.mark.skipif(not (SEED_CONFIGS / "pred_soft_attention.conf").is_file(),
                    reason=f"no seed .conf files in {SEED_CONFIGS} (beside the checkout)")
def test_seed_confs_predict_then_evaluate(task, tmp_path, capsys):
    output = tmp_path / "token_preds/{method}/{experiment_name}/{dataset_name}/{datetime}/token_scores.tsv"
    argv = ["--config", SEED_CONFIGS / "pred_soft_attention.conf", f"model_path={task['checkpoint']}",
            f"output_file={output}", "datetime=latest", "--limit", "30"]
    assert predict.main([str(a) for a in argv]) == 0
    written = tmp_path / "token_preds/soft_attention/soft_attention_wnut16/wnut16/latest/token_scores.tsv"
    assert len(read_tsv(written)) == 30
    capsys.readouterr()
    folder = tmp_path / "token_preds/{method}/{experiment_name}/{dataset_name}/{datetime}/"
    argv = ["--config", SEED_CONFIGS / "eval_soft_attention.conf", f"results_input_dir={folder}", "--limit", "30"]
    m = run_evaluate(capsys, *argv)
    assert m["n_sentences"] == 30 and m["gold"] == "wnut16:test"
    assert json.loads((written.parent / "token_results.txt").read_text()) == m["printed"]
    conf = SEED_CONFIGS / "pred_soft_attention.conf"
    assert "unknown key 'no_such_key'" in bad(capsys, predict.main, "--config", conf, "no_such_key=1")


def test_a_seed_lime_conf_sets_samples_and_the_pad_replacement(task, tmp_path):
    import pyarrow.parquet as pq

    conf = ROOT / "tests" / "seed_confs" / "lime_wnut16_test.conf"
    data = ["--data-dir", task["data"], "--positive-labels", "i", "--limit", "3", "--no-progress"]
    runs = {"conf": ["--config", conf, f"model_path={task['checkpoint']}"],
            "flags": ["--model", task["checkpoint"], "--method", "lime", "--lime-samples", 48, "--lime-replace", "pad"],
            "mask": ["--model", task["checkpoint"], "--method", "lime", "--lime-samples", 48]}
    scores, meta = {}, {}
    for name, argv in runs.items():
        out = tmp_path / f"{name}.tsv"
        assert predict.main([str(a) for a in [*argv, *data, "--output", out]]) == 0
        table = pq.read_table(out.with_suffix(".parquet"))
        scores[name] = table.column("score").to_pylist()
        meta[name] = json.loads(table.schema.metadata[b"zs_sweep"])
    assert (meta["conf"]["lime_samples"], meta["conf"]["baseline"]) == (48, "pad token")
    assert meta["conf"]["seed"] == 3  # the conf's seed draws LIME's samples
    assert scores["mask"] != scores["flags"]  # the pad token is another perturbation than the mask token
    again = tmp_path / "seed3.tsv"
    assert predict.main([str(a) for a in [*runs["flags"], "--seed", 3, *data, "--output", again]]) == 0
    assert read_tsv(again) == read_tsv(tmp_path / "conf.tsv")


@pytest.mark.slow
def test_smoke_test_command_line(tmp_path):
    out = tmp_path / "smoke.tsv"
    for method in ("lime",):
        run = subprocess.run([sys.executable, "-m", "sweep.predict", "--smoke-test", "--method", method,
                              "--output", str(out), "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, timeout=300)
        assert run.returncode == 0, run.stderr
        assert len(read_tsv(out)) == 8
