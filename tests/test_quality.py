"""bench/quality.py: its table from hand-made stage outputs, and its bad-input lines."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import quality  # noqa: E402
from quality_table import best_head, method_rows, task_table  # noqa: E402

PRESET = {**quality.PRESETS["cpu"], "lime_sample": 20}


def heads(split: str, rows: list[tuple]) -> pd.DataFrame:
    """rows: (model, layer, head, pooling, map, f1)."""
    frame = pd.DataFrame(rows, columns=["model", "layer", "head", "pooling", "map", "f1"])
    frame["layer"], frame["head"] = frame["layer"].astype("Int64"), frame["head"].astype("Int64")
    for column in ("precision", "recall", "f05"):
        frame[column] = frame["f1"] / 2
    frame["split"], frame["n_sentences"] = split, 9
    frame["method"] = ["random" if p == "random" else "head" for p in frame["pooling"]]
    frame["pooling"] = frame["pooling"].where(frame["method"] == "head", None)
    frame["threshold_kind"] = "dev_calibrated"
    return frame


@pytest.fixture
def home(tmp_path):
    (tmp_path / "final").mkdir()
    board = pd.DataFrame({
        "method": ["soft_attention"] * 3 + ["random"], "status": ["TERMINATED"] * 4,
        "dev/sent_f1": [0.80, 0.85, 0.70, None], "test/sent_f1": [0.81, 0.83, 0.79, None],
        **{f"test/tok_{k}": [0.30, 0.34, 0.32, None] for k in ("precision", "recall", "f1", "f05")},
        **{f"test/tok_cal_{k}": [0.40, 0.40, 0.40, None] for k in ("precision", "recall", "f1", "f05")},
        "test/tok_map": [0.5, 0.6, 0.7, None], "test/n_sentences": [9, 9, 9, None]})
    board.to_parquet(tmp_path / "final" / "leaderboard.parquet")
    ckpt = "/ck/seed2"
    for split, rows in {
        # on dev, L1 H1 of the checkpoint is best; on test L0 H0 would look better: dev must decide
        "dev": [(ckpt, 0, 0, "cls", 0.50, 0.1), (ckpt, 1, 1, "received", 0.60, 0.2),
                ("minilm", 0, 1, "cls", 0.70, 0.3), ("minilm", None, None, "random", 0.2, 0.1)],
        "test": [(ckpt, 0, 0, "cls", 0.90, 0.4), (ckpt, 1, 1, "received", 0.55, 0.25),
                 ("minilm", 0, 1, "cls", 0.65, 0.35), ("minilm", None, None, "random", 0.21, 0.22)],
    }.items():
        (tmp_path / f"heads_{split}").mkdir()
        heads(split, rows).to_parquet(tmp_path / f"heads_{split}" / "heads.parquet")
    lime = tmp_path / "preds" / "lime"
    lime.mkdir(parents=True)
    rows = [{"threshold_kind": "fixed", "map": 0.45, "precision": 0.0, "recall": 0.0, "f1": 0.0, "f05": 0.0},
            {"threshold_kind": "dev_calibrated", "map": 0.45, "precision": 0.2, "recall": 0.6, "f1": 0.3,
             "f05": 0.23}]
    (lime / "metrics.json").write_text(json.dumps({"rows": rows}))
    return tmp_path


def test_rows_use_dev_for_choices_and_seeds_for_spread(home):
    rows = {r["key"]: r for r in method_rows("fce", home, PRESET)}
    assert sorted(rows) == ["head_minilm", "head_trained", "lime", "random", "soft_attention@0.5",
                            "soft_attention@cal"]
    assert rows["soft_attention@0.5"]["values"]["f1"] == [0.30, 0.34, 0.32]
    assert rows["soft_attention@cal"]["values"]["map"] == [0.5, 0.6, 0.7]
    assert rows["head_trained"]["method"].startswith("best head, fine-tuned (L1 H1 received)")
    assert rows["head_trained"]["values"]["f1"] == [0.25]  # the test row of the head dev chose
    assert rows["head_trained"]["values"]["sent_f1"] == [0.83]  # the seed dev sentence F1 chose
    assert rows["head_minilm"]["values"]["map"] == [0.65]
    assert rows["random"]["values"]["f1"] == [0.22]
    assert rows["lime"]["values"]["f1"] == [0.3] and rows["lime"]["values"]["map"] == [0.45]
    assert best_head(home, "minilm", "minilm")["pooling"] == "cls"


def test_table_cells(home):
    table = task_table("fce", home, PRESET)
    line = next(x for x in table.splitlines() if x.startswith("| soft attention @0.5"))
    # F1 0.30, 0.34, 0.32: mean 32.00, sample std 2.00; paper 33.31 beside it
    assert "| 32.00 ± 2.00 |" in line and "| 9 |" in line and line.endswith("| 33.31 |") and "(3 seeds)" in line
    lime = next(x for x in table.splitlines() if x.startswith("| LIME"))
    assert "| 20 |" in lime and "| 30.00 |" in lime and lime.endswith("| 24.60 |")
    assert "sentence F1 85.62" in table
    assert "33.31" not in task_table("sst_pos", home, PRESET)  # the paper has no SST numbers


def test_bad_arguments(tmp_path, capsys):
    assert quality.main(["--tasks", "conll"]) == 2
    assert "--tasks: unknown task 'conll'" in capsys.readouterr().err
    assert quality.main(["--data-root", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "expected train.tsv, dev.tsv and test.tsv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_learning_curve_and_ablation_tables(home):
    curves = pd.DataFrame({"trial_id": ["a", "a", "b", "b"], "seed": [9, 9, 1, 1], "step": [500, 1000, 500, 1000],
                           "epoch": [0.3, 0.6, 0.3, 0.6], "dev/sent_f1": [0.80, 0.82, 0.78, 0.84],
                           **{f"dev/tok_{k}": [0.1, 0.2, 0.3, 0.4] for k in ("precision", "recall", "f1", "cal_f1",
                                                                              "map")}})
    curves.to_parquet(home / "final" / "curves.parquet")
    board = pd.read_parquet(home / "final" / "leaderboard.parquet")
    board["seed"], board["best_step"] = [9, 1, 2, None], [1000, 1000, 500, None]
    board.to_parquet(home / "final" / "leaderboard.parquet")
    (home / "ablation").mkdir()
    grid = pd.DataFrame({"method": ["soft_attention"] * 3 + ["random"], "seed": [9, 9, 9, None],
                         "num_train_epochs": [1, 1, 1, None], "square_attention": [True, False, False, None],
                         "zero_delta": [0.0, 0.1, 0.0, None], "attend_sep": [True, True, False, None],
                         "sentence_loss": ["ce2", "ce2", "bce", None], "dev/sent_f1": [0.7, 0.9, 0.8, 0.5],
                         **{f"dev/{k}": [0.1, 0.3, 0.2, 0.0] for k in ("tok_precision", "tok_recall", "tok_f1",
                                                                        "tok_cal_f1", "tok_map", "tok_corr")}})
    grid.to_parquet(home / "ablation" / "leaderboard.parquet")
    table = task_table("fce", home, PRESET)
    assert "P 20.76, R 85.36, F1 33.31" in table
    curve = [x for x in table.splitlines() if x.startswith("| 0.")]
    # step 500: sent F1 0.80 and 0.78 -> 79.00 ± 1.41; tok F1 0.1 and 0.3 -> 20.00 ± 14.14; seed 2 kept it
    assert curve[0].startswith("| 0.30 | 500 | 79.00 ± 1.41 |") and "| 20.00 ± 14.14 |" in curve[0]
    assert curve[0].endswith("| 2 |") and curve[1].endswith("| 1, 9 |")
    ablation = [x for x in table.splitlines() if x.startswith(("| True", "| False"))]
    assert len(ablation) == 3  # no random row; best dev sentence F1 first
    assert ablation[0].startswith("| False | 0.1 | True | ce2 | 90.00 | 30.00 |")  # dev sent F1, dev tok P
    assert ablation[-1].startswith("| True | 0.0 | True | ce2 | 70.00 |")


def test_budget_cut_is_the_first_n_or_a_fixed_random_n_by_task():
    assert quality.cut("fce", train=8000, dev=None) == {"limit": {"train": 8000}}
    assert quality.cut("sst_pos", train=1500, dev=600) == {"sample": {"train": 1500, "dev": 600}}
    assert quality.cut("sst_neg", train=None) == {}


SST = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"


@pytest.mark.skipif(not (SST / "train.sentences.tsv").is_file(), reason="SST benchmark data not beside the checkout")
@pytest.mark.parametrize("task", ["sst_pos", "sst_neg"])
def test_sst_budget_keeps_the_sentence_label_balance(task):
    """SST's files are ordered by sentiment: the cpu preset's 4,000 train and 600 dev sentences must hold
    about the share of positive sentences the whole split holds (the first 4,000 held 5% negative, not 39%)."""
    from zs_core.config import DataConfig
    from zs_core.data import load_splits

    _, positive, _ = quality.TASKS[task]
    whole = load_splits(DataConfig(dir=str(SST), positive_labels=tuple(positive)))
    for split, n in (("train", PRESET["final_train"][task]), ("dev", PRESET["search_dev"])):
        part = load_splits(DataConfig(dir=str(SST), positive_labels=tuple(positive),
                                      **quality.cut(task, **{split: n})))[split]
        assert len(part) == n
        share = [sum(s.label for s in xs) / len(xs) for xs in (part, whole[split])]
        assert abs(share[0] - share[1]) < 0.03, (split, share)
