"""zs_core.train: a CPU end-to-end run on the tiny encoder, repeatability, NaN losses, token targets,
split_metrics and the random baseline."""
import math
from dataclasses import replace

import pytest
import torch

from zs_core.batching import encode
from zs_core.config import DataConfig, build_config
from zs_core.data import Sentence, load_splits
from zs_core.predictions import write_word_scores_tsv
from zs_core.encoders import tiny_random_encoder
from zs_core.errors import InputError
from zs_core.metrics import calibrate_threshold, sentence_metrics, token_metrics
from zs_core.model import build_model
from zs_core.evaluation import random_scores
from zs_core.train import NonFiniteLoss, evaluate, load_token_targets, random_baseline, split_metrics, train

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

def test_load_token_targets(tmp_path):
    train_split = [sent(["a", "b", "c"], [0, 1, 0]), sent(["d", "e"], [0, 0])]
    write_word_scores_tsv(tmp_path / "preds.tsv", train_split, [[0.5, 1.5, -1.0], [0.0, 0.0]])
    base = {"token_input_dir": str(tmp_path), "token_input_filename": "preds.tsv", "soft_attention_beta": 1.0}
    assert load_token_targets(build_config(base, "t"), train_split) == [[0.5, 1.5, -1.0], [0.0, 0.0]]
    # normalise_preds: negatives to 0, then / sum per sentence (0.5 + 1.5 = 2); an all-zero sentence stays
    normalised = load_token_targets(build_config({**base, "normalise_preds": True}, "t"), train_split)
    assert normalised == [[0.25, 0.75, 0.0], [0.0, 0.0]]
    assert load_token_targets(build_config({**base, "soft_attention_beta": 0.0}, "t"), train_split) is None
    assert load_token_targets(build_config({}, "t"), train_split) is None


def test_token_targets_must_match_the_train_split(tmp_path):
    train_split = [sent(["a", "b"], [0, 1]), sent(["c"], [0])]
    cfg = build_config({"token_input_dir": str(tmp_path), "token_input_filename": "p.tsv",
                        "soft_attention_beta": 1.0}, "t")
    write_word_scores_tsv(tmp_path / "p.tsv", train_split[:1], [[0.1, 0.2]])
    with pytest.raises(InputError, match=r"p\.tsv: 1 sentences, but the train split has 2"):
        load_token_targets(cfg, train_split)
    write_word_scores_tsv(tmp_path / "p.tsv", [train_split[0], sent(["x"])], [[0.1, 0.2], [0.3]])
    with pytest.raises(InputError, match=r"p\.tsv: sentence 2 does not hold the train split's words"):
        load_token_targets(cfg, train_split)


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


# --- split_metrics ------------------------------------------------------------------------------

SENTENCES = [sent(["a", "b", "c"], [1, 0, 0]), sent(["d", "e"], [0, 0]), sent(["f", "g"], [0, 1])]
PROBS = [0.8, 0.3, 0.4]
WORDS = [[0.9, 0.2, 0.6], [0.4, 0.1], [0.7, 0.55]]
CFG = build_config({}, "t")  # importance_threshold 0.5, top_count 0


def test_split_metrics_dev_by_hand():
    out = split_metrics(SENTENCES, PROBS, WORDS, CFG)
    expected = {
        # sentences at 0.5: predicted [1, 0, 0] vs gold [1, 0, 1]
        "sent_precision": 1.0, "sent_recall": 0.5, "sent_f1": 2 / 3, "sent_accuracy": 2 / 3, "n_sentences": 3,
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
    assert out.keys() == expected.keys()
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key


def test_split_metrics_top_count():
    cfg = build_config({"top_count": 1}, "t")
    out = split_metrics(SENTENCES, PROBS, WORDS, cfg, calibrate=False)
    # top-1 per sentence: 0.9 (pos), 0.4 (< 0.5), 0.7 (neg) -> tp 1, fp 1, fn 1
    assert (out["tok_precision"], out["tok_recall"], out["tok_f1"]) == (0.5, 0.5, 0.5)


def test_test_split_never_calibrates_its_own_threshold():
    own = split_metrics(SENTENCES, PROBS, WORDS, CFG, threshold=None, calibrate=False)
    assert not any(k.startswith("tok_cal_") for k in own)
    assert own["tok_f1"] == pytest.approx(2 / 3)
    for calibrate in (False, True):
        given = split_metrics(SENTENCES, PROBS, WORDS, CFG, threshold=0.55, calibrate=calibrate)
        assert given["tok_cal_threshold"] == 0.55  # dev's threshold, never the split's own best (0.9)
        # >= 0.55: 0.9 (pos), 0.6, 0.7, 0.55 (pos) -> tp 2, fp 2
        assert (given["tok_cal_precision"], given["tok_cal_recall"]) == (0.5, 1.0)
        assert given["tok_cal_f05"] == pytest.approx(2.5 / 4.5)


def test_split_metrics_without_word_scores():
    out = split_metrics(SENTENCES, PROBS, None, CFG)
    assert out == {"sent_precision": 1.0, "sent_recall": 0.5, "sent_f1": pytest.approx(2 / 3),
                   "sent_accuracy": pytest.approx(2 / 3), "n_sentences": 3}


def test_split_metrics_without_positive_tokens_has_no_threshold():
    sentences = [sent(["a", "b"], [0, 0])]
    out = split_metrics(sentences, [0.2], [[0.9, 0.1]], CFG)
    assert math.isnan(out["tok_cal_threshold"]) and math.isnan(out["tok_cal_f1"])
    assert out["tok_precision"] == 0.0 and out["tok_map"] == 0.0


# --- random baseline ----------------------------------------------------------------------------

def test_random_baseline(splits):
    out = random_baseline(splits, CFG)
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
    assert random_baseline(splits, CFG) == out
