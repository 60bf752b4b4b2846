"""The max-pooling zero-shot head (multiple-instance learning): hand-set weights, the three reductions, the
loss terms it shares with soft attention, and the planted marker learnt from sentence labels alone."""
import math

import pytest
import torch
from torch import nn

from zs_core.batching import collate, encode
from zs_core.config import DataConfig, ModelConfig, build_config
from zs_core.data import Sentence, load_splits
from zs_core.encoders import load_tokenizer
from zs_core.errors import InputError
from zs_core.model import MaxPoolHead, attention_losses, build_model
from zs_core.train import train

# two sentences of 4 pieces, one hidden unit; piece 3 of row 0 and pieces 0 and 3 of row 1 are not words
HIDDEN = torch.tensor([[[0.5], [-1.0], [2.0], [9.0]], [[9.0], [0.1], [-0.2], [-9.0]]])
WORDS = torch.tensor([[True, True, True, False], [False, True, True, False]])


def hand_head(reduce="max", temperature=1.0) -> MaxPoolHead:
    head = MaxPoolHead(1, 1, dropout=0.0, reduce=reduce, temperature=temperature)
    with torch.no_grad():  # logit = 2 tanh(h) - 0.5
        head.evidence.weight.fill_(1.0)
        head.evidence.bias.zero_()
        head.weight.weight.fill_(2.0)
        head.weight.bias.fill_(-0.5)
    return head.eval()


def logit(h: float) -> float:
    return 2 * math.tanh(h) - 0.5


def test_a_word_piece_scores_its_own_probability_and_the_sentence_is_the_max():
    sentence, a = hand_head()(HIDDEN, WORDS)
    rows = [[0.5, -1.0, 2.0], [0.1, -0.2]]
    assert sentence[:, 0].tolist() == pytest.approx([logit(2.0), logit(0.1)], abs=1e-6)
    assert a[0, :3].tolist() == pytest.approx([1 / (1 + math.exp(-logit(h))) for h in rows[0]], abs=1e-6)
    assert a[0, 3].item() == 0 and a[1, 0].item() == 0 and a[1, 3].item() == 0  # not words: 0, never the max
    assert a[1, 1].item() == pytest.approx(1 / (1 + math.exp(-logit(0.1))), abs=1e-6)


def test_smooth_reductions():
    lse, _ = hand_head("logsumexp")(HIDDEN, WORDS)
    top3, _ = hand_head("top3")(HIDDEN, WORDS)
    first = [logit(h) for h in (0.5, -1.0, 2.0)]
    assert lse[0, 0].item() == pytest.approx(math.log(sum(math.exp(z) for z in first)), abs=1e-5)
    assert top3[0, 0].item() == pytest.approx(sum(first) / 3, abs=1e-6)
    assert top3[1, 0].item() == pytest.approx((logit(0.1) + logit(-0.2)) / 2, abs=1e-6)  # only 2 words


@pytest.mark.parametrize("t", [1.0, 0.5])
def test_maxmin_is_a_smooth_max_plus_a_smooth_min(t):
    sentence, a = hand_head("maxmin", temperature=t)(HIDDEN, WORDS)
    for row, hs in enumerate([(0.5, -1.0, 2.0), (0.1, -0.2)]):
        z = [logit(h) for h in hs]
        expected = t * math.log(sum(math.exp(v / t) for v in z)) - t * math.log(sum(math.exp(-v / t) for v in z))
        assert sentence[row, 0].item() == pytest.approx(expected, abs=1e-5)
    assert a[0, 2].item() == pytest.approx(1 / (1 + math.exp(-logit(2.0))), abs=1e-6)  # a word's own probability
    one = torch.tensor([[False, False, True, False]])  # one word: max = min, logit twice its own
    assert hand_head("maxmin")(HIDDEN[:1], one)[0].item() == pytest.approx(2 * logit(2.0), abs=1e-5)


@pytest.mark.parametrize("t", [0.25, 0.5, 2.0])
def test_a_tempered_log_sum_exp_lies_between_the_max_and_its_bound(t):
    sentence, _ = hand_head("logsumexp", temperature=t)(HIDDEN, WORDS)
    first = [logit(h) for h in (0.5, -1.0, 2.0)]
    assert sentence[0, 0].item() == pytest.approx(t * math.log(sum(math.exp(z / t) for z in first)), abs=1e-5)
    assert max(first) < sentence[0, 0].item() < max(first) + t * math.log(3)


@pytest.mark.parametrize("reduce", ["logsumexp", "maxmin"])
def test_a_tempered_smooth_max_of_a_sentence_without_words_has_logit_zero_and_finite_gradients(reduce):
    head = hand_head(reduce, temperature=0.1)
    hidden = HIDDEN.clone().requires_grad_(True)
    sentence, _ = head(hidden, torch.zeros_like(WORDS))
    sentence.sum().backward()
    assert sentence[:, 0].tolist() == [0.0, 0.0] and torch.isfinite(hidden.grad).all()


def test_a_temperature_without_the_log_sum_exp_is_refused():
    with pytest.raises(InputError, match="max_pool_temperature: applies to max_pool_reduce logsumexp and maxmin only"):
        build_config({"zero_shot_head": "max_pool", "max_pool_temperature": 0.5}, "space.yaml")
    cfg = build_config({"zero_shot_head": "max_pool", "max_pool_reduce": "logsumexp", "max_pool_temperature": 0.5},
                       "space.yaml")
    assert cfg.model.max_pool_temperature == 0.5


def test_a_sentence_without_words_has_logit_zero():
    sentence, a = hand_head()(HIDDEN, torch.zeros_like(WORDS))
    assert sentence[:, 0].tolist() == [0.0, 0.0] and a.abs().sum().item() == 0.0


def test_the_model_loss_is_bce_on_the_max_plus_the_shared_terms(tokenizer):
    cfg = ModelConfig(model_name="tiny-random", zero_shot_head="max_pool", attention_evidence_size=8,
                      soft_attention_alpha=0.3, soft_attention_gamma=0.2, zero_delta=0.4, zero_n=2)
    model = build_model(cfg, seed=3).eval()
    items, _ = encode([Sentence(("unbelievably", "good"), (1.0, 0.0)), Sentence(("ok",), (0.0,))], tokenizer, 32)
    batch = collate(items, tokenizer)
    outputs, loss = model(batch, batch["labels"])
    a, words = outputs["token_scores"], batch["word_index"] != -1
    assert (a[~words] == 0).all() and (a[words] > 0).all()
    best = torch.where(words, a, torch.zeros_like(a)).max(dim=1).values
    torch.testing.assert_close(outputs["sentence_scores"], best)  # sigmoid(max logit) = max probability
    expected = nn.functional.binary_cross_entropy_with_logits(outputs["sentence_logits"], batch["labels"]) + \
        attention_losses(a, words, batch["labels"], cfg)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_ce2_is_refused_for_max_pool():
    with pytest.raises(InputError, match="zero_shot_head max_pool has one sentence logit"):
        build_config({"zero_shot_head": "max_pool", "sentence_loss": "ce2"}, "t")


def test_max_pool_learns_the_planted_marker_from_sentence_labels(marker_task):
    cfg = build_config({"model_name": "tiny-random", "zero_shot_head": "max_pool", "num_train_epochs": 5,
                        "learning_rate": 1e-3, "warmup_ratio": 0.0, "attention_evidence_size": 16}, "marker")
    splits = load_splits(DataConfig(dir=str(marker_task["data"]), positive_labels=("i",)))
    model = build_model(cfg.model, 1)
    last = list(train(cfg, model, load_tokenizer("tiny-random"), splits))[-1]
    # one marker per positive sentence, found at the fixed threshold 0.5: its probability means what it says
    assert (last["dev/tok_f1"], last["dev/tok_map"], last["dev/words_sent_f1"]) == (1.0, 1.0, 1.0), last


def _cancelled_marker_bags(n=60):
    """Word ids of n sentences over a fixed vocabulary (0-7 filler, 8 the marker, 9 its canceller) and their labels:
    the marker alone makes a sentence positive, the marker with the canceller or no marker makes it negative."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 8, (n, 6), generator=g)                                     # [n, 6]
    ids[0::3, 2] = 8
    ids[1::3, 2], ids[1::3, 4] = 8, 9
    return ids, (torch.arange(n) % 3 == 0).float()


@pytest.mark.parametrize("reduce", ["logsumexp", "maxmin"])
def test_only_maxmin_lets_a_positive_word_keep_its_score_where_another_word_outweighs_it(reduce):
    # context-free word features: a word has one logit wherever it stands, as a lexical label (SST's) assumes
    ids, labels = _cancelled_marker_bags()
    table = torch.randn(10, 8, generator=torch.Generator().manual_seed(1))             # [V, D]
    torch.manual_seed(0)
    head = MaxPoolHead(8, 16, dropout=0.0, reduce=reduce)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    words = torch.ones_like(ids, dtype=torch.bool)
    for _ in range(300):
        sentence, a = head(table[ids], words)
        loss = nn.functional.binary_cross_entropy_with_logits(sentence[:, 0], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    decided = ((sentence[:, 0] > 0).float() == labels).float().mean().item()
    marker_where_cancelled = a[1::3, 2]
    if reduce == "maxmin":  # every sentence decided right, and the marker scores > 0.5 wherever it stands
        assert decided == 1.0 and (marker_where_cancelled > 0.5).all(), (decided, marker_where_cancelled)
    else:  # a smooth max >= every word's logit: the marker cannot be above 0 alone and below 0 beside the
        # canceller, so the head settles at 0.5 for it and a third of the sentences (the cancelled ones) go wrong
        assert decided == pytest.approx(2 / 3) and (marker_where_cancelled <= 0.5).all(), decided
