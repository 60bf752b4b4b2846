"""zs_core.protocol: the metric vocabulary, which methods score words, and the selection rules (ties by a second
metric, never by order)."""
import math

import pytest

from zs_core.config import ModelConfig
from zs_core.protocol import (
    CLASSIFIER,
    MAX_POOL,
    RULE_NAMES,
    SOFT_ATTENTION,
    SUPERVISED,
    better,
    gives_word_scores,
    model_method,
    pick,
    rank_key,
    rules_for,
    selectable,
    selection_rule,
    split_keys,
)

NAN = float("nan")


def rule(name):
    return next(r for r in rules_for(SOFT_ATTENTION) if r.name == name)


def test_each_model_has_one_method():
    assert model_method(ModelConfig()) == SOFT_ATTENTION
    assert model_method(ModelConfig(zero_shot_head="max_pool")) == MAX_POOL
    assert model_method(ModelConfig(soft_attention=False)) == CLASSIFIER
    assert model_method(ModelConfig(is_seq_class=False, soft_attention=False)) == SUPERVISED
    assert [gives_word_scores(m) for m in (SOFT_ATTENTION, MAX_POOL, SUPERVISED, CLASSIFIER)] == [1, 1, 1, 0]


def test_selectable_metrics_come_from_the_split_keys():
    soft, plain = set(selectable([SOFT_ATTENTION])), set(selectable([SOFT_ATTENTION, CLASSIFIER]))
    assert {"dev/tok_f1", "dev/tok_map", "dev/tok_cal_f1", "dev/words_sent_f1", "dev/loss", "step"} <= soft
    assert "dev/tok_f1" not in plain and {"dev/sent_f1", "dev/loss", "epoch"} <= plain
    assert soft == {"epoch", "step", "train/loss", "train/sentences_per_s"} | \
        {f"dev/{k}" for k in split_keys(SOFT_ATTENTION)}
    assert selectable([SUPERVISED]) == selectable([MAX_POOL]) == selectable([SOFT_ATTENTION])


def test_rules_for_a_model_without_word_scores_use_no_word_metric():
    assert [r.name for r in rules_for(CLASSIFIER)] == ["sent_f1", "loss", "last"]
    assert [r.name for r in rules_for(MAX_POOL)] == list(RULE_NAMES)
    assert [r.oracle for r in rules_for(SOFT_ATTENTION)] == [False, False, False, False, False, True, True]
    assert all(r.name.startswith("oracle_") == r.oracle for r in rules_for(SOFT_ATTENTION))


def test_ties_go_to_the_tiebreak_then_to_the_later_evaluation():
    runs = [{"step": 1, "dev/sent_f1": 0.8, "dev/loss": 0.5},
            {"step": 2, "dev/sent_f1": 0.8, "dev/loss": 0.4},   # ties on F1, lower loss: better
            {"step": 3, "dev/sent_f1": 0.7, "dev/loss": 0.1}]
    assert pick(rule("sent_f1"), runs) == 1
    assert pick(rule("loss"), runs) == 2 and pick(rule("last"), runs) == 2
    assert pick(rule("sent_f1"), runs[:1] * 2) == 1  # a tie in both: the later one
    assert pick(rule("sent_f1"), []) is None


def test_a_nan_never_beats_a_number():
    sent = rule("sent_f1")
    assert better(sent, {"dev/sent_f1": 0.1}, None) and better(sent, {"dev/sent_f1": NAN}, None)
    assert not better(sent, {"dev/sent_f1": NAN}, {"dev/sent_f1": 0.5})
    assert better(sent, {"dev/sent_f1": 0.1}, {"dev/sent_f1": NAN})
    assert not better(sent, {"dev/sent_f1": math.inf}, {"dev/sent_f1": 0.5})
    assert not better(rule("loss"), {"dev/loss": 0.6}, {"dev/loss": 0.5})


def test_the_ceilings_tie_at_zero_f1_is_broken_by_map():
    """Issue 19: dev token F1 at 0.5 was 0 at every epoch and the tie kept the first."""
    chosen = selection_rule("dev/tok_f1", "max")
    assert chosen.name == "oracle_tok_f1" and chosen.tiebreak == ("dev/tok_map", "max")
    runs = [{"dev/tok_f1": 0.0, "dev/tok_map": 0.6}, {"dev/tok_f1": 0.0, "dev/tok_map": 0.9},
            {"dev/tok_f1": 0.0, "dev/tok_map": 0.7}]
    assert pick(chosen, runs) == 1


@pytest.mark.parametrize("metric, mode, tiebreak, oracle", [
    ("dev/sent_accuracy", "max", ("dev/loss", "min"), False),
    ("dev/loss", "min", ("dev/sent_f1", "max"), False),
    ("dev/tok_cal_f1", "max", ("dev/tok_map", "max"), True),
    ("dev/tok_map", "max", ("dev/tok_f1", "max"), True),
])
def test_any_metric_gets_a_tiebreak(metric, mode, tiebreak, oracle):
    chosen = selection_rule(metric, mode)
    assert (chosen.tiebreak, chosen.oracle) == (tiebreak, oracle)
    assert rank_key(chosen, {metric: 1.0})[0] == (1.0 if mode == "max" else -1.0)
