"""zs_core.evaluation: one row schema for list scores and head scans, the wide leaderboard naming, a split's
columns (split_metrics), and the one random floor."""
import math
import zlib

import numpy as np
import pytest
import torch
from reference_metrics import token_metrics
from sklearn.metrics import roc_auc_score

from zs_core.config import DataConfig
from zs_core.data import Sentence, load_splits
from zs_core.evaluation import ListScores, list_rows, method_rows, random_baseline, random_scores, split_metrics, wide
from zs_core.headscan import HeadAccumulator
from zs_core.metrics import calibrate_threshold, sentence_metrics
from zs_core.protocol import CLASSIFIER, ROW_KEYS, SOFT_ATTENTION, split_keys


def sent(words, gold=None) -> Sentence:
    return Sentence(tuple(words), None if gold is None else tuple(float(x) for x in gold))

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


# --- split_metrics ------------------------------------------------------------------------------

SENTENCES = [sent(["a", "b", "c"], [1, 0, 0]), sent(["d", "e"], [0, 0]), sent(["f", "g"], [0, 1])]
PROBS = [0.8, 0.3, 0.4]
WORDS = [[0.9, 0.2, 0.6], [0.4, 0.1], [0.7, 0.55]]


def test_split_metrics_dev_by_hand():
    out = split_metrics(SOFT_ATTENTION, SENTENCES, PROBS, WORDS, loss=0.25)
    expected = {
        # sentences at 0.5: predicted [1, 0, 0] vs gold [1, 0, 1]
        "sent_precision": 1.0, "sent_recall": 0.5, "sent_f1": 2 / 3, "sent_accuracy": 2 / 3, "n_sentences": 3,
        "loss": 0.25,
        # the words' own decision: a sentence is positive when its best word >= 0.5: 0.9, 0.4, 0.7 -> [1, 0, 1]
        "words_sent_precision": 1.0, "words_sent_recall": 1.0, "words_sent_f1": 1.0, "words_sent_accuracy": 1.0,
        # tokens >= 0.5: 0.9 (pos), 0.6, 0.7, 0.55 (pos) -> tp 2, fp 2, fn 0
        "tok_precision": 0.5, "tok_recall": 1.0, "tok_f1": 2 / 3, "tok_f05": 2.5 / 4.5,
        # AP: sentence 1 has its positive first (1.0), sentence 3 second (0.5); sentence 2 has none
        "tok_map": 0.75,
        # Pearson of gold [1,0,0,0,0,0,1] and the scores: cov 3.25/7, variances 10/7 and 3.305/7
        "tok_corr": 3.25 / math.sqrt(10 * 3.305),
        # AUROC: 2 positives x 5 negatives; 0.9 beats all 5, 0.55 beats 0.2, 0.4, 0.1 -> 8 of 10 pairs
        "tok_auroc": 0.8,
        # F1 at 0.9 (tp 1 of 1 predicted) = F1 at 0.55 (tp 2 of 4) = 2/3: the highest threshold wins
        "tok_cal_threshold": 0.9, "tok_cal_precision": 1.0, "tok_cal_recall": 0.5, "tok_cal_f1": 2 / 3,
        "tok_cal_f05": 1.25 / 1.5,
    }
    # the trained model's own columns come from zs_core.train.evaluate (the deletion check runs the model)
    assert out.keys() == expected.keys() == set(split_keys(SOFT_ATTENTION)) - {"truncated_words", "deletion"}
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key


def test_split_metrics_top_count():
    out = split_metrics(SOFT_ATTENTION, SENTENCES, PROBS, WORDS, top_k=1, calibrate=False)
    # top-1 per sentence: 0.9 (pos), 0.4 (< 0.5), 0.7 (neg) -> tp 1, fp 1, fn 1
    assert (out["tok_precision"], out["tok_recall"], out["tok_f1"]) == (0.5, 0.5, 0.5)


def test_test_split_never_calibrates_its_own_threshold():
    own = split_metrics(SOFT_ATTENTION, SENTENCES, PROBS, WORDS, dev_threshold=None, calibrate=False)
    assert not any(k.startswith("tok_cal_") for k in own)
    assert own["tok_f1"] == pytest.approx(2 / 3)
    for calibrate in (False, True):
        given = split_metrics(SOFT_ATTENTION, SENTENCES, PROBS, WORDS, dev_threshold=0.55, calibrate=calibrate)
        assert given["tok_cal_threshold"] == 0.55  # dev's threshold, never the split's own best (0.9)
        # >= 0.55: 0.9 (pos), 0.6, 0.7, 0.55 (pos) -> tp 2, fp 2
        assert (given["tok_cal_precision"], given["tok_cal_recall"]) == (0.5, 1.0)
        assert given["tok_cal_f05"] == pytest.approx(2.5 / 4.5)


def test_split_metrics_without_word_scores():
    out = split_metrics(CLASSIFIER, SENTENCES, PROBS, None)
    assert math.isnan(out.pop("loss"))  # none given
    assert out == {"sent_precision": 1.0, "sent_recall": 0.5, "sent_f1": pytest.approx(2 / 3),
                   "sent_accuracy": pytest.approx(2 / 3), "n_sentences": 3}
    assert set(out) | {"loss", "truncated_words"} == set(split_keys(CLASSIFIER))


def test_split_metrics_without_positive_tokens_has_no_threshold():
    sentences = [sent(["a", "b"], [0, 0])]
    out = split_metrics(SOFT_ATTENTION, sentences, [0.2], [[0.9, 0.1]])
    assert math.isnan(out["tok_cal_threshold"]) and math.isnan(out["tok_cal_f1"])
    assert out["tok_precision"] == 0.0 and out["tok_map"] == 0.0


# --- random baseline ----------------------------------------------------------------------------

def test_random_baseline():
    splits = load_splits(DataConfig(limit={"train": 4, "dev": 32, "test": 32}))
    out = random_baseline(splits)
    dev, test = splits["dev"], splits["test"]
    (dev_probs, dev_words), (test_probs, test_words) = random_scores(dev), random_scores(test)
    dev_threshold = calibrate_threshold([s.gold for s in dev], dev_words)
    assert out["dev/tok_cal_threshold"] == dev_threshold
    assert out["test/tok_cal_threshold"] == dev_threshold  # test is scored at dev's threshold, not its own
    assert out["dev/sent_f1"] == sentence_metrics([s.label for s in dev], dev_probs)["f1"]
    assert out["test/sent_accuracy"] == sentence_metrics([s.label for s in test], test_probs)["accuracy"]
    assert out["dev/tok_map"] == token_metrics([s.gold for s in dev], dev_words)["map"]
    assert out["test/tok_f1"] == token_metrics([s.gold for s in test], test_words, threshold=0.5)["f1"]
    assert out["test/tok_cal_f1"] == token_metrics([s.gold for s in test], test_words, threshold=dev_threshold)["f1"]
    assert out["dev/n_sentences"] == 32 and out["test/n_sentences"] == 32
    assert all(k.startswith(("dev/", "test/")) for k in out)
    assert random_baseline(splits).keys() == out.keys()
    assert all(v == random_baseline(splits)[k] or (math.isnan(v) and k.endswith("/loss")) for k, v in out.items())


def test_the_random_floor_of_an_unlabelled_test_split_has_no_test_columns():
    splits = {"dev": [sent(["a", "b"], [1, 0]), sent(["c"], [0])], "test": [sent(["a", "b"])]}
    out = random_baseline(splits)
    assert out and all(k.startswith("dev/") for k in out)
