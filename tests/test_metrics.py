"""Exact-value tests for zs_core.metrics (hand-computed cases and sklearn references)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reference_metrics import token_metrics
from sklearn.metrics import average_precision_score, fbeta_score, precision_recall_fscore_support

from zs_core.errors import InputError
from zs_core.metrics import calibrate_threshold, f_beta, sentence_metrics

# Hand case A: threshold 0.5
#   s0 labels 1 0 1 0, scores .9 .6 .4 .1 -> pred 1 1 0 0: tp 1, fp 1, fn 1
#   s1 labels 0 0 1,   scores .7 .2 .5    -> pred 1 0 1:   tp 1, fp 1, fn 0
#   tp 2, fp 2, fn 1: P = 1/2, R = 2/3, F1 = 4/7, F0.5 = 2.5 / 4.75 = 10/19
#   AP s0: ranks .9(+) .6 .4(+) .1 -> 1/2 * 1 + 1/2 * 2/3 = 5/6; AP s1: .7 .5(+) -> 1/2; MAP = 2/3
LAB_A = [[1, 0, 1, 0], [0, 0, 1]]
SCO_A = [[0.9, 0.6, 0.4, 0.1], [0.7, 0.2, 0.5]]


def test_hand_case_no_top_k():
    m = token_metrics(LAB_A, SCO_A)
    assert m["precision"] == pytest.approx(0.5, abs=1e-15)
    assert m["recall"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["f1"] == pytest.approx(4 / 7, abs=1e-15)
    assert m["f05"] == pytest.approx(10 / 19, abs=1e-15)
    assert m["map"] == pytest.approx(2 / 3, abs=1e-15)
    assert (m["threshold"], m["top_k"]) == (0.5, 0)
    assert (m["n_sentences"], m["n_tokens"], m["n_positive"]) == (2, 7, 3)
    for key in ("precision", "recall", "f1", "f05", "map", "threshold"):
        assert type(m[key]) is float
    for key in ("top_k", "n_sentences", "n_tokens", "n_positive"):
        assert type(m[key]) is int


def test_hand_case_top_1():
    # s0 top1 = .9 -> pred 1 0 0 0: tp 1, fn 1; s1 top1 = .7 -> pred 1 0 0: fp 1, fn 1
    # tp 1, fp 1, fn 2: P = 1/2, R = 1/3, F1 = 2/5, F0.5 = 1.25 / 2.75 = 5/11; MAP unchanged 2/3
    m = token_metrics(LAB_A, SCO_A, threshold=0.5, top_k=1)
    assert m["precision"] == pytest.approx(0.5, abs=1e-15)
    assert m["recall"] == pytest.approx(1 / 3, abs=1e-15)
    assert m["f1"] == pytest.approx(0.4, abs=1e-15)
    assert m["f05"] == pytest.approx(5 / 11, abs=1e-15)
    assert m["map"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["top_k"] == 1


def test_top_k_ties_take_earlier_word():
    # all scores equal: stable descending sort keeps word order, so top1 = word 0 (a negative)
    m1 = token_metrics([[0, 1, 0]], [[0.8, 0.8, 0.8]], top_k=1)
    assert (m1["precision"], m1["recall"], m1["f1"]) == (0.0, 0.0, 0.0)
    # top2 = words 0, 1: tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3
    m2 = token_metrics([[0, 1, 0]], [[0.8, 0.8, 0.8]], top_k=2)
    assert (m2["precision"], m2["recall"]) == (0.5, 1.0)
    assert m2["f1"] == pytest.approx(2 / 3, abs=1e-15)


def test_threshold_is_inclusive():
    m = token_metrics([[1, 0]], [[0.5, 0.49]], threshold=0.5)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)


def test_map_clips_negative_scores():
    # clipped scores 0, 0, .3: ranks .3(-) then a tie at 0 holding the positive -> AP = 1 * 1/3
    # (unclipped, -.2 would rank second alone and give 1/2)
    m = token_metrics([[0, 1, 0]], [[-0.5, -0.2, 0.3]])
    assert m["map"] == pytest.approx(1 / 3, abs=1e-15)


def test_map_excludes_sentences_without_positive():
    # s0: .9(-) .2(+) -> AP 1/2; s1 has no positive and is left out: MAP 1/2, not 1/4
    m = token_metrics([[1, 0], [0, 0]], [[0.2, 0.9], [0.5, 0.1]])
    assert m["map"] == pytest.approx(0.5, abs=1e-15)


def test_no_positive_gives_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = token_metrics([[0, 0], [0]], [[0.9, 0.1], [0.7]])
        e = token_metrics([], [])
    assert (m["precision"], m["recall"], m["f1"], m["f05"], m["map"]) == (0.0,) * 5
    assert (e["n_sentences"], e["n_tokens"], e["f1"], e["map"]) == (0, 0, 0.0, 0.0)


def test_f_beta_helper():
    assert f_beta(0, 0, 0, 1.0) == 0.0
    assert f_beta(2, 2, 1, 1.0) == pytest.approx(4 / 7, abs=1e-15)
    assert f_beta(2, 2, 1, 0.5) == pytest.approx(10 / 19, abs=1e-15)
    assert f_beta(0, 3, 4, 0.5) == 0.0


def _random_split(seed: int, n_sent: int = 150):
    rng = np.random.default_rng(seed)
    labels, scores = [], []
    for _ in range(n_sent):
        n = int(rng.integers(1, 13))
        labels.append([int(v) for v in rng.random(n) < 0.3])
        # 1 decimal -> many ties; range includes negative scores
        scores.append([float(v) for v in np.round(rng.random(n) * 1.3 - 0.2, 1)])
    return labels, scores


def _reference_predictions(scores, threshold, top_k):
    pred = []
    for s in scores:
        allowed = set(range(len(s)))
        if top_k > 0:  # Python's sorted is stable: equal scores keep word order
            allowed = set(sorted(range(len(s)), key=lambda j: -s[j])[:top_k])
        pred.extend(int(s[j] >= threshold and j in allowed) for j in range(len(s)))
    return np.array(pred)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("top_k", [0, 1, 3])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_prf_against_sklearn(seed, top_k, threshold):
    labels, scores = _random_split(seed)
    y = np.concatenate([np.array(lab) for lab in labels])
    pred = _reference_predictions(scores, threshold, top_k)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    f05 = fbeta_score(y, pred, beta=0.5, zero_division=0)
    m = token_metrics(labels, scores, threshold=threshold, top_k=top_k)
    assert m["precision"] == pytest.approx(p, abs=1e-12)
    assert m["recall"] == pytest.approx(r, abs=1e-12)
    assert m["f1"] == pytest.approx(f, abs=1e-12)
    assert m["f05"] == pytest.approx(f05, abs=1e-12)
    assert m["n_positive"] == int(y.sum()) and m["n_tokens"] == y.size


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_map_against_sklearn_loop(seed):
    labels, scores = _random_split(seed)
    aps = [
        average_precision_score(lab, np.maximum(np.array(s), 0))
        for lab, s in zip(labels, scores)
        if sum(lab) > 0
    ]
    m = token_metrics(labels, scores)
    assert m["map"] == pytest.approx(float(np.mean(aps)), abs=1e-12)
    assert token_metrics(labels, scores, top_k=1)["map"] == m["map"]  # MAP ignores top_k


def test_calibrate_hand_cases():
    # P = 2; thresholds .9: 2*1/(1+2) = 2/3, .6: 2/4, .4: 4/5, .1: 4/6 -> best .4
    assert calibrate_threshold([[1, 0, 1, 0]], [[0.9, 0.6, 0.4, 0.1]]) == 0.4
    # top_k 2: only .9 and .6 can be predicted: 2/3 vs 2/4 -> .9
    assert calibrate_threshold([[1, 0, 1, 0]], [[0.9, 0.6, 0.4, 0.1]], top_k=2) == 0.9
    # .9: 2/3, .8: 2/4, .7: 2/5, .1: 4/6 = 2/3 -> tie, the highest threshold (.9) wins
    assert calibrate_threshold([[1, 0, 0, 1]], [[0.9, 0.8, 0.7, 0.1]]) == 0.9


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("top_k", [0, 1, 3])
def test_calibrate_matches_brute_force(seed, top_k):
    labels, scores = _random_split(seed, n_sent=80)
    candidates = sorted({v for s in scores for v in s})
    f1 = {t: token_metrics(labels, scores, threshold=t, top_k=top_k)["f1"] for t in candidates}
    best = max(f1.values())
    t = calibrate_threshold(labels, scores, top_k=top_k)
    assert token_metrics(labels, scores, threshold=t, top_k=top_k)["f1"] == best
    assert t == max(c for c in candidates if f1[c] == best)


def test_calibrate_large_split():
    rng = np.random.default_rng(7)
    labels = [[int(v) for v in rng.random(20) < 0.2] for _ in range(3000)]
    scores = [[float(v) for v in rng.random(20)] for _ in range(3000)]
    t = calibrate_threshold(labels, scores)
    f_t = token_metrics(labels, scores, threshold=t)["f1"]
    for other in (0.0, 0.25, 0.5, 0.75, 0.95):
        assert token_metrics(labels, scores, threshold=other)["f1"] <= f_t


def test_calibrate_without_positive_raises():
    with pytest.raises(InputError, match="no positive token in the calibration split"):
        calibrate_threshold([[0, 0], [0]], [[0.1, 0.2], [0.3]])


def test_ragged_input_names_sentence():
    with pytest.raises(InputError, match=r"sentence 1: 3 labels but 2 scores"):
        token_metrics([[1, 0], [1, 0, 0]], [[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(InputError, match="sentence 1"):
        calibrate_threshold([[1, 0], [1, 0, 0]], [[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(InputError, match="2 sentences but scores have 1"):
        token_metrics([[1], [0]], [[0.1]])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_score_raises(bad):
    with pytest.raises(InputError, match="sentence 2: score is NaN or infinite"):
        token_metrics([[1], [0], [1, 0]], [[0.1], [0.2], [0.3, bad]])


def test_bad_label_and_top_k_raise():
    with pytest.raises(InputError, match="sentence 0"):
        token_metrics([[2, 0]], [[0.1, 0.2]])
    with pytest.raises(InputError, match="top_k"):
        token_metrics([[1, 0]], [[0.1, 0.2]], top_k=-1)


def test_sentence_metrics_hand_case():
    # pred at .5 (inclusive): 1 1 0 1 0 vs 1 0 1 1 0 -> tp 2, fp 1, fn 1, tn 1
    # P = R = F1 = 2/3, accuracy = 3/5
    m = sentence_metrics([1, 0, 1, 1, 0], [0.9, 0.6, 0.4, 0.5, 0.2])
    assert m["precision"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["recall"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["f1"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["accuracy"] == pytest.approx(0.6, abs=1e-15)
    assert all(type(v) is float for v in m.values())


def test_sentence_metrics_random_and_degenerate():
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.4).astype(int)
    s = np.round(rng.random(200), 1)
    p, r, f, _ = precision_recall_fscore_support(y, (s >= 0.5).astype(int), average="binary")
    m = sentence_metrics(list(y), list(s))
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p, r, f), abs=1e-12)
    assert m["accuracy"] == pytest.approx(float(np.mean(y == (s >= 0.5))), abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = sentence_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert d == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0}
    with pytest.raises(InputError):
        sentence_metrics([1, 0], [0.5])
    with pytest.raises(InputError):
        sentence_metrics([1, 0], [0.5, float("nan")])


def test_corr_is_the_seeds_pearson_of_gold_and_clipped_scores():
    from scipy.stats import pearsonr

    labels = [[1, 0, 0], [0, 1]]
    scores = [[0.8, -0.4, 0.1], [0.3, 0.6]]                 # -0.4 counts as 0, as in the seed's MAP and corr
    expected = pearsonr([1, 0, 0, 0, 1], [0.8, 0.0, 0.1, 0.3, 0.6])[0]
    assert token_metrics(labels, scores)["corr"] == pytest.approx(expected, abs=1e-12)
    assert token_metrics(labels, [[0.5, 0.5, 0.5], [0.5, 0.5]])["corr"] == 0.0   # constant scores
    assert token_metrics([[0, 0], [0]], [[0.1, 0.9], [0.3]])["corr"] == 0.0         # no positive word
