"""zs_core.train: a CPU end-to-end run on the tiny encoder, repeatability, NaN losses, token targets, the
caller's RNG left alone, and the selection rules' picks scored on test."""
import math
from dataclasses import replace

import pytest
import torch

from zs_core.batching import encode
from zs_core.config import DataConfig, build_config
from zs_core.data import Sentence, load_splits
from zs_core.encoders import tiny_random_encoder
from zs_core.errors import InputError
from zs_core.model import build_model
from zs_core.predictions import token_targets, write_word_scores_tsv
from zs_core.protocol import SOFT_ATTENTION, TOK_CAL_THRESHOLD, TOK_F1, on_dev, on_test, pick, rules_for
from zs_core.state import TrainState
from zs_core.train import NonFiniteLoss, evaluate, make_optimizer, train

TIMING = ("seconds", "train/sentences_per_s")
TINY = {"model_name": "tiny-random", "attention_evidence_size": 16, "final_hidden_layer_size": 16,
        "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16, "warmup_ratio": 0.0,
        "max_seq_length": 64}


def sent(words, gold=None) -> Sentence:
    return Sentence(tuple(words), None if gold is None else tuple(float(x) for x in gold))


@pytest.fixture(scope="module")
def splits():
    return load_splits(DataConfig(limit={"train": 64, "dev": 32, "test": 32}))


def run(splits, tokenizer, model=None, on_epoch=None, **changes):
    cfg = build_config({**TINY, "learning_rate": 3e-3, "num_train_epochs": 3, **changes}, "test")
    model = model or build_model(cfg.model, cfg.train.seed)
    history = []
    for metrics in train(cfg, model, tokenizer, splits):
        if on_epoch:
            on_epoch(cfg, model, metrics)
        history.append(metrics)
    return history


def without_timing(history):
    return [{k: v for k, v in m.items() if k not in TIMING} for m in history]


@pytest.fixture(scope="module")
def history(splits, tokenizer):
    """Three epochs on 64 wnut16 tweets; at each epoch the model is re-evaluated on dev by the caller."""
    checks = []

    def on_epoch(cfg, model, metrics):
        items, _ = encode(splits["dev"], tokenizer, cfg.data.max_seq_length)
        again = evaluate(model, items, splits["dev"], tokenizer, cfg)
        checks.append((metrics, again))

    out = run(splits, tokenizer, on_epoch=on_epoch)
    return out, checks


def test_end_to_end_training_loss_falls(history):
    out, _ = history
    assert [m["epoch"] for m in out] == [1, 2, 3] and [m["step"] for m in out] == [8, 16, 24]
    losses = [m["train/loss"] for m in out]
    assert losses[0] > losses[1] > losses[2]
    assert losses[2] < 0.75 * losses[0]


def test_yielded_metrics_keys_and_ranges(history):
    out, _ = history
    for m in out:
        for key in ("dev/sent_f1", "dev/tok_map", "dev/tok_cal_f1", "dev/tok_cal_threshold", "train/loss", "seconds"):
            assert key in m and math.isfinite(m[key])
        assert m["dev/n_sentences"] == 32
        assert m["train/truncated_words"] == 0 and m["dev/truncated_words"] == 0
        assert m["seconds"] > 0 and m["train/sentences_per_s"] > 0
        for key in ("dev/sent_f1", "dev/sent_accuracy", "dev/tok_map", "dev/tok_f1", "dev/tok_cal_f1"):
            assert 0.0 <= m[key] <= 1.0
        assert m["dev/tok_cal_f1"] >= m["dev/tok_f1"]  # calibrated on dev itself: never worse on dev


def test_the_model_holds_that_epochs_weights_when_yielded(history):
    _, checks = history
    assert len(checks) == 3
    for metrics, again in checks:
        for key, value in again.items():
            assert metrics[f"dev/{key}"] == value


def test_same_seed_same_metrics_on_cpu(history, splits, tokenizer):
    out, _ = history
    assert without_timing(run(splits, tokenizer)) == without_timing(out)


def test_another_seed_gives_another_run(history, splits, tokenizer):
    out, _ = history
    other = run(splits, tokenizer, seed=16, num_train_epochs=1)
    assert other[0]["train/loss"] != out[0]["train/loss"]


def test_eval_steps_evaluates_every_n_steps_and_after_the_last(history, splits, tokenizer):
    # 64 sentences in batches of 8: 8 steps an epoch, 24 in 3 epochs; every 10 steps and after step 24
    checks = []

    def on_eval(cfg, model, metrics):
        items, _ = encode(splits["dev"], tokenizer, cfg.data.max_seq_length)
        checks.append((metrics, evaluate(model, items, splits["dev"], tokenizer, cfg)))

    stepwise = run(splits, tokenizer, on_epoch=on_eval, eval_steps=10)
    assert [m["step"] for m in stepwise] == [10, 20, 24]
    assert [m["epoch"] for m in stepwise] == [1.25, 2.5, 3.0]
    for metrics, again in checks:  # the model holds the evaluated step's weights
        assert all(metrics[f"dev/{k}"] == v for k, v in again.items())
    # evaluating in between changes nothing: the last evaluation is the per-epoch run's last epoch
    per_epoch, _ = history
    assert [m["step"] for m in per_epoch] == [8, 16, 24]
    last = {k: v for k, v in stepwise[-1].items() if k.startswith("dev/")}
    assert last == {k: v for k, v in per_epoch[-1].items() if k.startswith("dev/")}


def test_an_eval_steps_beyond_the_run_still_evaluates_once(splits, tokenizer):
    out = run(splits, tokenizer, eval_steps=500, num_train_epochs=1)
    assert [(m["step"], m["epoch"]) for m in out] == [(8, 1.0)]


def test_warmup_counts_steps_or_the_seeds_sentences(splits, tokenizer, monkeypatch):
    import zs_core.train as train_module

    seen = []
    real = train_module.get_linear_schedule_with_warmup
    monkeypatch.setattr(train_module, "get_linear_schedule_with_warmup",
                        lambda opt, warmup, total: seen.append((warmup, total)) or real(opt, warmup, total))
    run(splits, tokenizer, num_train_epochs=2, warmup_ratio=0.1)
    run(splits, tokenizer, num_train_epochs=2, warmup_ratio=0.1, warmup_unit="sentences")
    # 16 optimizer steps: int(0.1 * 16) = 1; the seed: int(0.1 * 64 sentences * 2 epochs) = 12
    assert seen == [(1, 16), (12, 16)]
    # the paper's FCE run: 26,509 sentences, batch 16, 20 epochs: the warm-up outlasts the 33,140 steps
    fce = build_config({"warmup_unit": "sentences", "num_train_epochs": 20}, "t").train
    assert train_module.warmup_steps(fce, 26509, 1657 * 20) == 53018
    assert train_module.warmup_steps(fce.model_copy(update={"warmup_unit": "steps"}), 26509, 1657 * 20) == 3314


def test_nan_weight_raises_non_finite_loss(splits, tokenizer):
    cfg = build_config({**TINY, "num_train_epochs": 1}, "test")
    model = build_model(cfg.model, cfg.train.seed)
    with torch.no_grad():
        model.head.weight.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteLoss, match=r"^loss is nan at epoch 1, step 1$"):
        next(train(cfg, model, tokenizer, splits))


def test_absurd_learning_rate_with_sharp_attention_raises_non_finite_loss(splits, tokenizer):
    # exp(w . e) with weights moved by ~1e4 per Adam step overflows; inf / inf gives a NaN loss
    with pytest.raises(NonFiniteLoss, match=r"^loss is nan at epoch 1, step [1-8]$"):  # 8 steps in an epoch
        run(splits, tokenizer, attention_activation="sharp", learning_rate=1e4, num_train_epochs=1)


def test_frozen_layers_do_not_move(splits, tokenizer):
    cfg = build_config({**TINY, "num_train_epochs": 1, "learning_rate": 1e-2, "freeze_bert_layers_up_to": 1}, "t")
    model = build_model(cfg.model, cfg.train.seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    list(train(cfg, model, tokenizer, {"train": splits["train"][:16], "dev": splits["dev"][:8]}))
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith(("encoder.embeddings.", "encoder.encoder.layer.0.")) for k in moved)
    assert any(k.startswith("encoder.encoder.layer.1.") for k in moved)
    assert {"head.evidence.weight", "head.weight.weight", "head.final.weight", "head.out.weight"} <= moved


def test_word_masking_changes_training(splits, tokenizer):
    small = {"train": splits["train"][:16], "dev": splits["dev"][:8]}
    plain = run(small, tokenizer, num_train_epochs=1)
    masked = run(small, tokenizer, num_train_epochs=1, do_mask_words=True, mask_prob=0.5)
    assert masked[0]["train/loss"] != plain[0]["train/loss"]
    assert without_timing(run(small, tokenizer, num_train_epochs=1, do_mask_words=True, mask_prob=0.0)) == \
        without_timing(plain)


# --- token targets (beta) -----------------------------------------------------------------------

def test_token_targets(tmp_path):
    train_split = [sent(["a", "b", "c"], [0, 1, 0]), sent(["d", "e"], [0, 0])]
    write_word_scores_tsv(tmp_path / "preds.tsv", train_split, [[0.5, 1.5, -1.0], [0.0, 0.0]])
    assert token_targets(tmp_path / "preds.tsv", train_split) == [[0.5, 1.5, -1.0], [0.0, 0.0]]
    # normalise_preds: negatives to 0, then / sum per sentence (0.5 + 1.5 = 2); an all-zero sentence stays
    assert token_targets(tmp_path / "preds.tsv", train_split, normalise=True) == [[0.25, 0.75, 0.0], [0.0, 0.0]]


def test_token_targets_must_match_the_train_split(tmp_path):
    train_split = [sent(["a", "b"], [0, 1]), sent(["c"], [0])]
    write_word_scores_tsv(tmp_path / "p.tsv", train_split[:1], [[0.1, 0.2]])
    with pytest.raises(InputError, match=r"p\.tsv: 1 sentences, but the train split has 2"):
        token_targets(tmp_path / "p.tsv", train_split)
    write_word_scores_tsv(tmp_path / "p.tsv", [train_split[0], sent(["x"])], [[0.1, 0.2], [0.3]])
    with pytest.raises(InputError, match=r"p\.tsv: sentence 2 does not hold the train split's words"):
        token_targets(tmp_path / "p.tsv", train_split)


def test_training_with_gold_token_targets(tmp_path, splits, tokenizer):
    small = {"train": splits["train"][:16], "dev": splits["dev"][:8]}
    write_word_scores_tsv(tmp_path / "gold.tsv", small["train"], [list(s.gold) for s in small["train"]])
    plain = run(small, tokenizer, num_train_epochs=1)
    beta = run(small, tokenizer, num_train_epochs=1, soft_attention_beta=1.0, token_input_dir=str(tmp_path),
               token_input_filename="gold.tsv")
    assert math.isfinite(beta[0]["train/loss"]) and beta[0]["train/loss"] > plain[0]["train/loss"]


def test_lowercase_is_applied_before_tokenizing(tmp_path, splits, tokenizer):
    folder = tmp_path / "cased"
    tiny_random_encoder("sdpa").save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = folder / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"do_lower_case": true', '"do_lower_case": false'))
    from zs_core.encoders import load_tokenizer

    cased = load_tokenizer(str(folder))
    assert cased.tokenize("Paris") != cased.tokenize("paris")
    small = {"train": splits["train"][:16], "dev": splits["dev"][:8]}
    lower = {k: [replace(s, words=tuple(w.lower() for w in s.words)) for s in v] for k, v in small.items()}
    assert lower != small
    asked = run(small, cased, num_train_epochs=1, model_name=str(folder), lowercase=True)
    done = run(lower, cased, num_train_epochs=1, model_name=str(folder), lowercase=False)
    assert without_timing(asked) == without_timing(done)


# --- the caller's RNG, selection rules ------------------------------------------------------------

def test_training_leaves_the_callers_rng_alone(splits, tokenizer):
    small = {"train": splits["train"][:16], "dev": splits["dev"][:8]}
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    quiet = without_timing(run(small, tokenizer, num_train_epochs=2))
    assert torch.equal(torch.rand(3), expected)  # training drew from its own RNG only
    noisy = without_timing(run(small, tokenizer, num_train_epochs=2, on_epoch=lambda *_: torch.rand(100)))
    assert noisy == quiet  # the caller's draws between evaluations change nothing in the run


def test_each_rules_pick_is_scored_on_test_when_it_is_picked(splits, tokenizer):
    cfg = build_config({**TINY, "learning_rate": 3e-3, "num_train_epochs": 2, "eval_steps": 3}, "rules")
    rules = rules_for(SOFT_ATTENTION)
    state = TrainState()
    out = list(train(cfg, build_model(cfg.model, cfg.train.seed), tokenizer, splits, state=state, rules=rules))
    assert [m["step"] for m in out] == [3, 6, 9, 12, 15, 16]
    for i, m in enumerate(out):
        picked = {r.name for r in rules if pick(r, out[: i + 1]) == i} - {"last"}
        assert (on_test(TOK_F1) in m) == bool(picked or i == len(out) - 1), (i, picked)
        if on_test(TOK_F1) in m:
            assert m[on_test(TOK_CAL_THRESHOLD)] == m[on_dev(TOK_CAL_THRESHOLD)]  # test never picks its own
            assert m[on_test("n_sentences")] == 32
    assert {r.name: state.picks[r.name]["step"] for r in rules} == {r.name: out[pick(r, out)]["step"] for r in rules}
    plain = list(train(cfg, build_model(cfg.model, cfg.train.seed), tokenizer, splits))
    dev_only = [{k: v for k, v in m.items() if k.startswith("dev/")} for m in out]
    assert dev_only == [{k: v for k, v in m.items() if k.startswith("dev/")} for m in plain]
    assert not any(k.startswith("test/") for m in plain for k in m)


def test_the_head_learns_at_head_learning_rate_and_the_encoder_at_learning_rate(splits, tokenizer):
    cfg = build_config({**TINY, "num_train_epochs": 1, "learning_rate": 1e-6, "head_learning_rate": 1e-2}, "t")
    groups = make_optimizer(build_model(cfg.model, 1), cfg).param_groups
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == \
        [(1e-6, 0.1, 16), (1e-6, 0.0, 23), (1e-2, 0.1, 4), (1e-2, 0.0, 4)]
    model = build_model(cfg.model, 1)
    before = {k: v.clone() for k, v in model.named_parameters()}
    list(train(cfg, model, tokenizer, {"train": splits["train"][:8], "dev": splits["dev"][:8]}))  # one step
    moved = {k: (v - before[k]).abs().max().item() for k, v in model.named_parameters()}
    head, encoder = max(v for k, v in moved.items() if k.startswith("head.")), \
        max(v for k, v in moved.items() if k.startswith("encoder."))
    # Adam's first step moves a weight by its learning rate (plus the decoupled decay, lr x 0.1 x |w|)
    assert head == pytest.approx(1e-2, rel=0.1) and encoder == pytest.approx(1e-6, rel=0.1)


def test_without_head_learning_rate_the_groups_are_the_two_of_before(splits, tokenizer):
    """Optimizer states saved by earlier versions (decay, then no decay) still load on resume."""
    cfg = build_config({**TINY, "learning_rate": 1e-4}, "t")
    groups = make_optimizer(build_model(cfg.model, 1), cfg).param_groups
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [(1e-4, 0.1, 20), (1e-4, 0.0, 27)]
    cfg = build_config({**TINY, "learning_rate": 1e-4, "weight_decay": 0.0}, "t")   # equal values: still two groups
    groups = make_optimizer(build_model(cfg.model, 1), cfg).param_groups
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [(1e-4, 0.0, 20), (1e-4, 0.0, 27)]
