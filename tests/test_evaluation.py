"""zs_core.evaluation: one row schema for list scores and head scans, the wide leaderboard naming, and the
one random floor."""
import math
import zlib

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from zs_core.evaluation import ROW_KEYS, ListScores, list_rows, method_rows, random_scores, wide
from zs_core.headscan import HeadAccumulator
from zs_core.metrics import calibrate_threshold, token_metrics

# dev: F1 is best at 0.6 (tp 2 of 2 predicted); test is scored at that threshold, and at 0.5
DEV = ([[1, 0, 1], [0, 0]], [[0.9, 0.5, 0.6], [0.55, 0.1]])
TEST = ([[1, 0, 0, 0], [0, 1]], [[0.7, 0.65, 0.2, -0.1], [0.4, 0.58]])


def test_list_rows_are_the_fixed_and_the_dev_calibrated_row():
    rows = list_rows("lime", *TEST, dev=DEV)
    assert [tuple(r) for r in rows] == [ROW_KEYS, ROW_KEYS]
    fixed, cal = rows
    assert (fixed["method"], fixed["threshold_kind"], fixed["threshold"]) == ("lime", "fixed", 0.5)
    assert (cal["threshold_kind"], cal["threshold"]) == ("dev_calibrated", 0.6)
    assert calibrate_threshold(*DEV) == 0.6
    # at 0.5: 0.7 (pos), 0.65, 0.58 (pos) -> tp 2, fp 1, fn 0; at 0.6: 0.7 (pos), 0.65 -> tp 1, fp 1, fn 1
    assert (fixed["precision"], fixed["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert (cal["precision"], cal["recall"], cal["f1"]) == (0.5, 0.5, 0.5)
    for row in rows:  # the same whatever the threshold
        assert row["map"] == token_metrics(*TEST)["map"] == 1.0
        assert row["auroc"] == roc_auc_score([1, 0, 0, 0, 0, 1], [0.7, 0.65, 0.2, -0.1, 0.4, 0.58])
        assert row["corr"] == token_metrics(*TEST)["corr"] and row["n_sentences"] == 2
        assert (row["layer"], row["head"], row["pooling"]) == (None, None, None)
    assert list_rows("x", *TEST, dev_threshold=0.6) == [{**r, "method": "x"} for r in rows]
    assert [r["threshold_kind"] for r in list_rows("x", *TEST)] == ["fixed"]
    assert [r["threshold_kind"] for r in list_rows("x", *TEST, dev=DEV, fixed=None)] == ["dev_calibrated"]


def test_head_scan_rows_have_the_same_schema_and_values_as_lists():
    """A head scan's rows equal each head scored as a list, when its scores sit on the grid."""
    rng = np.random.default_rng(0)
    golds = [rng.integers(0, 2, 6).tolist() for _ in range(5)]
    scores = np.round(rng.random((5, 2, 1, 2, 6)), 2)                                  # [B, P, L, H, W]
    grid = np.round(np.linspace(0, 1, 101), 2)
    acc = HeadAccumulator(2, 1, 2, thresholds=grid, poolings=("received", "cls"))
    acc.update(torch.tensor(scores), golds)
    rows = method_rows("head", acc, fixed=0.5, dev_thresholds=acc.calibrate())
    assert len(rows) == 2 * 2 * 2 and all(tuple(r) == ROW_KEYS for r in rows)
    for row in rows:
        p = ("received", "cls").index(row["pooling"])
        lists = [list(scores[b, p, row["layer"], row["head"]]) for b in range(5)]
        same = list_rows("head", golds, lists, dev=(golds, lists) if row["threshold_kind"] != "fixed" else None,
                         fixed=0.5 if row["threshold_kind"] == "fixed" else None)[0]
        for key in ("threshold", "precision", "recall", "f1", "f05", "map", "corr"):
            assert row[key] == pytest.approx(same[key], abs=1e-9), key
        assert row["auroc"] == pytest.approx(same["auroc"], abs=1e-9)


def test_wide_names_every_row_by_one_rule():
    rows = list_rows("soft_attention", *TEST, dev=DEV)
    out = wide(rows, "test/")
    assert out["test/tok_f1"] == rows[0]["f1"] and out["test/tok_cal_f1"] == rows[1]["f1"]
    assert out["test/tok_cal_threshold"] == 0.6 and out["test/tok_map"] == rows[0]["map"]
    assert set(out) == {f"test/tok_{k}" for k in ("precision", "recall", "f1", "f05", "map", "auroc", "corr")} | {
        f"test/tok_cal_{k}" for k in ("precision", "recall", "f1", "f05", "threshold")}


def test_no_positive_word_on_dev_gives_nan_calibrated_rows():
    assert math.isnan(ListScores([[0, 0]], [[0.3, 0.9]]).calibrate()[0])
    cal = list_rows("x", *TEST, dev=([[0, 0]], [[0.3, 0.9]]))[1]
    assert math.isnan(cal["threshold"]) and math.isnan(cal["f1"]) and cal["map"] == 1.0


def test_random_scores_follow_the_sentence():
    class S:
        def __init__(self, *words):
            self.words = words

    a, b = S("a", "b"), S("c")
    probs, words = random_scores([a, b])
    assert random_scores([b, a]) == (probs[::-1], words[::-1])  # order and company do not matter
    assert [len(w) for w in words] == [2, 1] and probs[0] != probs[1]
    draws = np.random.default_rng((0, zlib.crc32(b"a\tb"))).random(3)   # RANDOM_SEED 0, crc32 of the words
    assert probs[0] == draws[0] and words[0] == draws[1:].tolist()
