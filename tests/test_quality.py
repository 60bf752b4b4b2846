"""bench/quality.py: its tables from hand-made stage outputs, the zero-shot choice of each head's initializer,
its bad-input lines, and its first stage end to end on the tiny encoder."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import quality  # noqa: E402
from quality_table import best_head, chosen_initializer, method_rows, task_table  # noqa: E402

from zs_core.protocol import RULE_NAMES  # noqa: E402

PRESET = {**quality.PRESETS["cpu"], "lime_sample": 20}
RULES = ["sent_f1", "words_sent_f1", "loss", "last", "oracle_tok_f1", "oracle_tok_map"]


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


def picks(method: str, f1_by_rule: dict[str, list[float]], init: str = "xavier") -> pd.DataFrame:
    """rules.parquet rows: for each rule, one row per seed (1, 2, 3) with its test token F1 at 0.5."""
    rows = []
    for rule, values in f1_by_rule.items():
        for seed, f1 in zip((1, 2, 3), values):
            rows.append({"trial_id": f"{method}{seed}", "method": method, "seed": seed, "initializer_name": init,
                         "rule": rule, "oracle": rule.startswith("oracle"),
                         "rule_metric": {"sent_f1": "dev/sent_f1", "words_sent_f1": "dev/words_sent_f1",
                                         "loss": "dev/loss", "last": "step"}.get(rule, "dev/tok_f1"),
                         "epoch": 1.0 + seed, "step": 100 * seed, "dev/words_sent_f1": 0.5 + f1, "dev/loss": 1 - f1,
                         "test/tok_f1": f1, "test/tok_precision": f1 / 2, "test/tok_recall": 2 * f1,
                         "test/tok_cal_f1": f1 + 0.01, "test/tok_map": f1 + 0.1, "test/sent_f1": 0.8,
                         "test/n_sentences": 9})
    return pd.DataFrame(rows)


@pytest.fixture
def home(tmp_path):
    (tmp_path / "final").mkdir()
    pd.concat([picks(head, {r: [base, base + 0.04, base + 0.02] for r in RULES})
               for head, base in (("soft_attention", 0.30), ("max_pool", 0.40))]).to_parquet(
        tmp_path / "final" / "rules.parquet")
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
    (tmp_path / "ceiling").mkdir()
    pd.DataFrame({"method": ["supervised", "random"], "best_epoch": [4.0, None], "test/n_sentences": [9, 9],
                  **{f"test/tok_{m}": [0.6, 0.1] for m in ("precision", "recall", "f1", "cal_f1", "map")}}
                 ).to_parquet(tmp_path / "ceiling" / "leaderboard.parquet")
    return tmp_path


def test_rows_per_head_and_rule_with_seeds_for_spread(home):
    rows = method_rows(home, PRESET)
    assert [(r["method"], r["rule"]) for r in rows[:3]] == [("random", "@dev-cal"), ("soft attention", "sent_f1"),
                                                           ("soft attention", "words_sent_f1")]
    by = {(r["method"], r["rule"]): r for r in rows}
    assert by[("max pool", "oracle_tok_map")]["oracle"] and not by[("max pool", "last")]["oracle"]
    assert by[("soft attention", "loss")]["values"]["f1"] == pytest.approx([0.30, 0.34, 0.32])
    assert by[("max pool", "loss")]["values"]["map"] == pytest.approx([0.50, 0.54, 0.52])
    assert by[("random", "@dev-cal")]["values"]["cal_f1"] == [0.22]
    trained = next(r for r in rows if r["method"].startswith("best head, fine-tuned"))
    assert trained["method"] == "best head, fine-tuned (L1 H1 received)"  # dev chose it
    assert trained["values"]["cal_f1"] == [0.25]  # its test row
    assert best_head(home, "minilm", "minilm")["pooling"] == "cls"
    assert by[("LIME, LIME's sample", "@dev-cal")]["values"] == {"cal_f1": [0.3], "map": [0.45]}
    ceiling = by[("supervised ceiling", "oracle: dev token F1 (supervised)")]
    assert ceiling["values"]["f1"] == [0.6] and ceiling["epoch"] == [4.0]  # not the random row


def test_table_cells(home):
    table = task_table("fce", home, PRESET)
    line = next(x for x in table.splitlines() if x.startswith("| soft attention (3 seeds) | **words_sent_f1**"))
    # F1 0.30, 0.34, 0.32: mean 32.00, sample std 2.00; P is half, R twice; epoch 2, 3, 4
    assert "| 32.00 ± 2.00 | 33.00 ± 2.00 | 42.00 ± 2.00 | 3.00 |" in line and "| 16.00 ± 1.00 |" in line
    assert "Schmaltz" in table and "Schmaltz" not in task_table("sst_pos", home, PRESET)
    assert (home / "curves.png").is_file() is False  # no curves.parquet: no picture


def test_a_variant_final_has_rows_of_its_own_and_the_headline_rule_may_pick_it(tmp_path):
    home = tmp_path / "fce"
    for sweep, f1 in (("final", 0.40), ("final_max_pool_lse", 0.45)):  # the cpu preset's FCE variant
        (home / sweep).mkdir(parents=True)
        picks("max_pool", {r: [f1] * 3 for r in RULES}).to_parquet(home / sweep / "rules.parquet")
        pd.DataFrame({"method": ["max_pool"] * 3, "checkpoint": [f"/ck/{sweep}/{s}" for s in (1, 2, 3)],
                      "dev/words_sent_f1": [0.5 + f1, 0.6 + f1, 0.4 + f1]}).to_parquet(home / sweep / "leaderboard.parquet")
    rows = method_rows(home, PRESET)
    variant = "max pool, max_pool_reduce: logsumexp, num_train_epochs: 3"
    assert [r["method"] for r in rows] == ["max pool"] * len(RULES) + [variant] * len(RULES)
    by = {(r["method"], r["rule"]): r for r in rows}
    assert by[("max pool", "last")]["values"]["f1"] == pytest.approx([0.40] * 3)
    assert by[(variant, "last")]["values"]["f1"] == pytest.approx([0.45] * 3)
    # its mean dev words-sentence F1 at the headline's picks is higher (0.95 against 0.90): its best seed is shown
    assert quality.best_final(home) == ("max_pool", "/ck/final_max_pool_lse/2")


def test_the_initializer_is_chosen_by_the_headline_rule_on_dev(tmp_path):
    frame = pd.concat([picks("max_pool", {"words_sent_f1": [0.3, 0.3, 0.3]}, "xavier"),
                       picks("max_pool", {"words_sent_f1": [0.2, 0.5, 0.3]}, "glorot"),
                       picks("soft_attention", {"words_sent_f1": [0.9, 0.9, 0.9]}, "glorot")])
    # test F1 drives these made-up dev values; glorot's mean dev words-sent F1 is 0.833 against 0.8
    frame.to_parquet(tmp_path / "rules.parquet")
    assert chosen_initializer(tmp_path, "max_pool", "dev/words_sent_f1") == "glorot"
    frame.loc[frame["initializer_name"] == "glorot", "dev/words_sent_f1"] = 0.8  # a tie: the lower dev loss
    frame.to_parquet(tmp_path / "rules.parquet")
    assert chosen_initializer(tmp_path, "max_pool", "dev/words_sent_f1") == "glorot"


def test_bad_arguments(tmp_path, capsys):
    assert quality.main(["--tasks", "conll"]) == 2
    assert "--tasks: unknown task 'conll'" in capsys.readouterr().err
    assert quality.main(["--data-root", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "expected train.tsv, dev.tsv and test.tsv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_budget_cut_is_the_first_n_or_a_fixed_random_n_by_task():
    assert quality.cut("fce", train=8000, dev=None) == {"limit": {"train": 8000}}
    assert quality.cut("sst_pos", train=1500, dev=600) == {"sample": {"train": 1500, "dev": 600}}
    assert quality.cut("sst_neg", train=None) == {}


SST = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"


@pytest.mark.skipif(not (SST / "train.sentences.tsv").is_file(), reason="SST benchmark data not beside the checkout")
@pytest.mark.parametrize("task", ["sst_pos", "sst_neg"])
def test_sst_budget_keeps_the_sentence_label_balance(task):
    """SST's files are ordered by sentiment: the cpu preset's 4,000 compare sentences must hold about the share
    of positive sentences the whole split holds (the first 4,000 held 5% negative, not 39%)."""
    from zs_core.config import DataConfig
    from zs_core.data import load_splits

    _, positive, _ = quality.TASKS[task]
    whole = load_splits(DataConfig(dir=str(SST), positive_labels=tuple(positive)), ("train",))
    n = PRESET["compare"]["train"][task]
    part = load_splits(DataConfig(dir=str(SST), positive_labels=tuple(positive),
                                  **quality.cut(task, train=n)), ("train",))["train"]
    assert len(part) == n
    share = [sum(s.label for s in xs) / len(xs) for xs in (part, whole["train"])]
    assert abs(share[0] - share[1]) < 0.03, share


@pytest.mark.slow
def test_the_compare_stage_end_to_end(tmp_path, marker_task, capsys):
    """The smoke preset's first stage on the marker task laid out as fce/: sweep.run of both heads x both
    initializers, then the table (its comparison section)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fce").symlink_to(marker_task["data"])
    out = tmp_path / "out"
    assert quality.main(["--preset", "smoke", "--tasks", "fce", "--data-root", str(tmp_path / "data"),
                         "--output", str(out), "--until", "compare", "--num-cpus", "2"]) == 0
    assert "sweep.run" in (out / "commands.log").read_text() and "--num-cpus 2" in (out / "commands.log").read_text()
    picked = pd.read_parquet(out / "fce" / "compare" / "rules.parquet")
    assert set(picked["method"]) == {"soft_attention", "max_pool"} and len(picked) == 2 * 2 * 2 * len(RULE_NAMES)  # x seeds x rules
    assert picked["test/tok_f1"].notna().all()  # every rule's pick scored on test
    table = (out / "fce" / "table.md").read_text()
    assert "| max pool | glorot | 2 |" in table and "| soft attention | xavier | 2 |" in table
    assert not list((out / "fce").glob("final*"))  # --until compare
