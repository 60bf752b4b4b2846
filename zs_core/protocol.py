"""The token-score protocol's one home: the metric vocabulary, which rows a method gets, whether a model gives
word scores, the rules that choose an evaluation, and the protocol's version (README, "Token-score protocol").

Every column name a result carries is made here: a split's metrics (``split_keys``) carry the split as a
prefix (``dev/tok_f1``, ``test/sent_f1``); the metrics a sweep may select on (``selectable``) are derived from
them, so a metric added here is selectable with no other edit. Rows (heads.parquet, sweep.evaluate) have
``ROW_KEYS`` and one row per threshold kind; a leaderboard flattens them (``evaluation.wide``).

Selection rules (``RULES``) pick one evaluation of a run. The zero-shot ones use sentence labels only; the
oracles use dev token labels and are always named ``oracle_*``, never a default. Ties in a rule's metric are
broken by a second metric (``Rule.tiebreak``), and only a tie in both by the later evaluation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

PROTOCOL_VERSION = "2"  # raised whenever a number's definition changes; every output records it

# --- methods: what made a set of word scores ---------------------------------------------------------------
SOFT_ATTENTION, MAX_POOL, SUPERVISED, CLASSIFIER = "soft_attention", "max_pool", "supervised", "classifier"
HEAD, RANDOM = "head", "random"
POOLINGS = ("received", "cls")  # a head's piece score: the mean attention a piece receives, or [CLS]'s to it
WORD_SCORING_MODELS = (SOFT_ATTENTION, MAX_POOL, SUPERVISED)  # trained models that score words themselves


def model_method(model_cfg: Any) -> str:
    """A model config's method: supervised (the ceiling), soft_attention or max_pool (the zero-shot word-scoring
    heads), or classifier (a [CLS] head without word scores of its own)."""
    if not model_cfg.is_seq_class:
        return SUPERVISED
    return model_cfg.zero_shot_head if model_cfg.soft_attention else CLASSIFIER


def gives_word_scores(method: str) -> bool:
    return method in WORD_SCORING_MODELS


# --- result rows -----------------------------------------------------------------------------------------
FIXED, DEV_CALIBRATED = "fixed", "dev_calibrated"  # threshold kinds: the configured one, the dev-calibrated one
AT_THRESHOLD = ("precision", "recall", "f1", "f05")  # token metrics that depend on the threshold
THRESHOLD_FREE = ("map", "auroc", "corr")
ROW_KEYS = ("method", "layer", "head", "pooling", "threshold_kind", "threshold", *AT_THRESHOLD, *THRESHOLD_FREE,
            "n_sentences")


def threshold_kinds(method: str) -> tuple[str, ...]:
    """The rows a method gets on a reported split: a head has no threshold of its own (dev-calibrated only);
    a trained model and the random floor get both."""
    return (DEV_CALIBRATED,) if method == HEAD else (FIXED, DEV_CALIBRATED)


# --- leaderboard columns: one split's metrics ------------------------------------------------------------
DEV, TEST, TRAIN = "dev/", "test/", "train/"  # a column's split: on_dev(TOK_F1) is "dev/tok_f1"
SENTENCE = ("precision", "recall", "f1", "accuracy")  # sent_*: the classifier's decision at 0.5
SENT_F1, WORDS_SENT_F1 = "sent_f1", "words_sent_f1"  # words_sent_*: "a word scores >= the threshold"
TOK_F1, TOK_MAP, TOK_CAL_F1, TOK_CAL_THRESHOLD = "tok_f1", "tok_map", "tok_cal_f1", "tok_cal_threshold"
LOSS = "loss"  # the training objective on the split (sentence loss and the head's terms)
# P(positive | a random word masked) - P(positive | the top-scored word masked), over the positive sentences:
# do the word scores point at what the classifier decides on? (label-free; zs_core.deletion)
DELETION = "deletion"
N_SENTENCES, TRUNCATED = "n_sentences", "truncated_words"
DEFAULT_METRIC = DEV + SENT_F1  # a sweep's tune.metric when none is given: the paper's rule
EPOCH, STEP, SECONDS = "epoch", "step", "seconds"  # where an evaluation stands, and the seconds since the last
TRAIN_LOSS, SENTENCES_PER_S = TRAIN + "loss", TRAIN + "sentences_per_s"
TRAIN_KEYS = (EPOCH, STEP, TRAIN_LOSS, SENTENCES_PER_S)  # every report; selectable (not the seconds: a timing)


def sent(metric: str) -> str:
    return f"sent_{metric}"


def words_sent(metric: str) -> str:
    return f"words_sent_{metric}"


def tok(metric: str, calibrated: bool = False) -> str:
    return f"tok_{'cal_' if calibrated else ''}{metric}"




def on_dev(key: str) -> str:
    return DEV + key


def on_test(key: str) -> str:
    return TEST + key


def split_keys(method: str) -> tuple[str, ...]:
    """The metrics one evaluation of a split yields for a model of ``method``: sentence metrics and loss
    always; token metrics (fixed threshold, dev-calibrated, threshold-free), the words' own sentence
    decision and the deletion check (a trained model's only: it needs the model) when the model scores words."""
    keys = (*map(sent, SENTENCE), LOSS, N_SENTENCES, TRUNCATED)
    if not gives_word_scores(method):
        return keys
    return (*keys, *map(words_sent, SENTENCE), DELETION, *map(tok, AT_THRESHOLD + THRESHOLD_FREE),
            *(tok(m, calibrated=True) for m in AT_THRESHOLD), TOK_CAL_THRESHOLD)


def selectable(methods: Sequence[str]) -> list[str]:
    """What every trial of a sweep whose models have these methods reports at each dev evaluation."""
    common = set.intersection(*(set(split_keys(m)) for m in methods)) if methods else set()
    return [*TRAIN_KEYS, *(on_dev(k) for k in split_keys(SOFT_ATTENTION) if k in common)]


def is_oracle(metric: str) -> bool:
    """Does selecting on ``metric`` use token labels? (the dev token metrics do)"""
    return metric.startswith(on_dev("tok_"))


# --- selection rules -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """Pick the evaluation with the best ``metric`` (``mode``); ties by ``tiebreak`` (metric, mode)."""
    name: str
    metric: str
    mode: str
    tiebreak: tuple[str, str] | None
    oracle: bool
    about: str


RULES = (
    Rule("sent_f1", on_dev(SENT_F1), "max", (on_dev(LOSS), "min"), False,
         "the classifier's dev sentence F1 (the paper's rule)"),
    Rule("words_sent_f1", on_dev(WORDS_SENT_F1), "max", (on_dev(LOSS), "min"), False,
         "dev sentence F1 of the word scores' own decision (a word >= the threshold)"),
    Rule("loss", on_dev(LOSS), "min", (on_dev(SENT_F1), "max"), False, "the dev value of the training objective"),
    Rule("deletion", on_dev(DELETION), "max", (on_dev(LOSS), "min"), False,
         "masking each positive dev sentence's top-scored word lowers its probability more than a random word"),
    Rule("last", STEP, "max", None, False, "the last evaluation"),
    Rule("oracle_tok_f1", on_dev(TOK_F1), "max", (on_dev(TOK_MAP), "max"), True,
         "ORACLE: dev token F1 at the fixed threshold (uses token labels)"),
    Rule("oracle_tok_map", on_dev(TOK_MAP), "max", (on_dev(TOK_F1), "max"), True,
         "ORACLE: dev token MAP (uses token labels)"),
)
RULE_NAMES = tuple(r.name for r in RULES)


def rules_for(method: str) -> tuple[Rule, ...]:
    """The rules that apply to a model of ``method`` (those on word metrics need word scores)."""
    keys = {on_dev(k) for k in split_keys(method)} | set(TRAIN_KEYS)
    return tuple(r for r in RULES if r.metric in keys)


def selection_rule(metric: str, mode: str) -> Rule:
    """The rule behind a sweep's ``tune.metric``: a named rule when one selects on it, else the metric with
    the default tie-break (dev MAP for a token metric, dev loss for any other)."""
    for rule in RULES:
        if rule.metric == metric and rule.mode == mode:
            return rule
    if is_oracle(metric):
        tiebreak = (on_dev(TOK_MAP), "max") if metric != on_dev(TOK_MAP) else (on_dev(TOK_F1), "max")
    else:
        tiebreak = (on_dev(LOSS), "min") if metric != on_dev(LOSS) else (on_dev(SENT_F1), "max")
    return Rule(metric, metric, mode, tiebreak, is_oracle(metric), f"{mode} {metric}")


def _key(value: Any, mode: str) -> float:
    """A comparable number, larger is better; NaN or missing is the worst."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return -math.inf
    return float(value) if mode == "max" else -float(value)


def rank_key(rule: Rule, evaluation: dict) -> tuple[float, ...]:
    """Larger is better under ``rule``: its metric, then its tie-break (NaN or missing is the worst)."""
    order = [(rule.metric, rule.mode)] + ([rule.tiebreak] if rule.tiebreak else [])
    return tuple(_key(evaluation.get(metric), mode) for metric, mode in order)


def better(rule: Rule, new: dict, best: dict | None) -> bool:
    """Does the evaluation ``new`` replace ``best`` (None: nothing yet) under ``rule``? A NaN metric never
    beats a number; equal values go to the tie-break, and a tie in both to the later evaluation (``new``)."""
    return best is None or rank_key(rule, new) >= rank_key(rule, best)


def pick(rule: Rule, evaluations: Sequence[dict]) -> int | None:
    """The index of the evaluation ``rule`` picks among a run's evaluations, in order (None: there are none)."""
    chosen = None
    for i, evaluation in enumerate(evaluations):
        if chosen is None or better(rule, evaluation, evaluations[chosen]):
            chosen = i
    return chosen
