"""zs_core.model: the loss terms on hand-made tensors, the soft-attention head with hand-set weights,
the plain head, sentence losses, initializers, and the whole model on the tiny encoder."""
import math

import pytest
import torch
from torch import nn

from zs_core.batching import collate, encode
from zs_core.config import ModelConfig
from zs_core.data import Sentence
from zs_core.model import (
    FirstTokenHead,
    SoftAttentionHead,
    ZeroShotClassifier,
    attention_losses,
    build_model,
    end_tokens,
)

OFF = ModelConfig(soft_attention_alpha=0.0, soft_attention_gamma=0.0, soft_attention_beta=0.0, zero_delta=0.0)

# Two sentences of 5 pieces. Unscored pieces ([CLS], [SEP], padding) hold extreme values that would
# change every min and max if they were looked at.
A = torch.tensor([[0.2, 0.6, 0.9, 7.0, -4.0],
                  [-5.0, 0.5, 0.3, 0.8, 9.0]])
SCORED = torch.tensor([[True, True, True, False, False],
                       [False, True, True, True, False]])
LABELS = torch.tensor([1.0, 0.0])
# beta targets on first pieces: row 0 pieces 0 and 2, row 1 pieces 1 and 3
TARGETS = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 1.0, 0.0]])
TARGET_MASK = torch.tensor([[True, False, True, False, False],
                            [False, True, False, True, False]])


def loss_of(a=A, scored=SCORED, labels=LABELS, targets=None, target_mask=None, **terms) -> float:
    return attention_losses(a, scored, labels, OFF.model_copy(update=terms), targets, target_mask).item()


def sent(words, gold=None) -> Sentence:
    return Sentence(tuple(words), None if gold is None else tuple(float(x) for x in gold))


# --- loss terms ---------------------------------------------------------------------------------

def test_all_terms_off_is_zero():
    assert loss_of(targets=TARGETS, target_mask=TARGET_MASK) == 0.0


def test_alpha_is_mean_of_squared_min_over_scored_pieces():
    # mins: row 0 min(0.2, 0.6, 0.9) = 0.2; row 1 min(0.5, 0.3, 0.8) = 0.3 -> (0.04 + 0.09) / 2
    assert loss_of(soft_attention_alpha=1.0) == pytest.approx(0.065, abs=1e-7)
    assert loss_of(soft_attention_alpha=0.1) == pytest.approx(0.0065, abs=1e-8)


def test_gamma_is_mean_of_squared_max_minus_label():
    # maxes: row 0 0.9 (label 1), row 1 0.8 (label 0) -> ((0.9 - 1)^2 + (0.8 - 0)^2) / 2 = (0.01 + 0.64) / 2
    assert loss_of(soft_attention_gamma=1.0) == pytest.approx(0.325, abs=1e-7)


def test_alpha_and_gamma_add_up():
    # 0.1 * 0.065 + 0.1 * 0.325
    assert loss_of(soft_attention_alpha=0.1, soft_attention_gamma=0.1) == pytest.approx(0.039, abs=1e-7)


def test_beta_is_mse_on_first_pieces():
    # (0.2 - 1)^2 = 0.64, (0.9 - 0)^2 = 0.81, (0.5 - 0)^2 = 0.25, (0.8 - 1)^2 = 0.04 -> 1.74 / 4
    assert loss_of(targets=TARGETS, target_mask=TARGET_MASK, soft_attention_beta=1.0) == pytest.approx(0.435, abs=1e-7)
    assert loss_of(targets=TARGETS, target_mask=TARGET_MASK, soft_attention_beta=2.0) == pytest.approx(0.87, abs=1e-7)


def test_beta_with_normalise_labels_fits_the_normalised_attention():
    a = A.masked_fill(~SCORED, 0.0)  # as the head hands it over: 0 on unscored pieces
    # row 0: a / 1.7 -> 2/17 and 9/17 at the targets 1 and 0: (15/17)^2 + (9/17)^2 = 306/289
    # row 1: a / 1.6 -> 5/16 and 1/2 at the targets 0 and 1: (5/16)^2 + (1/2)^2 = 89/256
    # mean over 4 first pieces: (306/289 + 89/256) / 4 = 0.35161994...
    got = loss_of(a, targets=TARGETS, target_mask=TARGET_MASK, soft_attention_beta=1.0, normalise_labels=True)
    assert got == pytest.approx(0.3516199448529, abs=1e-7)
    raw = loss_of(a, targets=TARGETS, target_mask=TARGET_MASK, soft_attention_beta=1.0)
    assert raw == pytest.approx(0.435, abs=1e-7)


def test_beta_normalise_labels_with_a_negative_sum():
    a = torch.tensor([[-0.5, -0.25]])
    # a / sum(a) = [2/3, 1/3] against targets [1, 0]: ((1/3)^2 + (1/3)^2) / 2 = 1/9
    got = loss_of(a, torch.ones(1, 2, dtype=torch.bool), torch.tensor([1.0]), targets=torch.tensor([[1.0, 0.0]]),
                  target_mask=torch.ones(1, 2, dtype=torch.bool), soft_attention_beta=1.0, normalise_labels=True)
    assert got == pytest.approx(1 / 9, abs=1e-7)


def test_beta_needs_targets():
    assert loss_of(soft_attention_beta=1.0) == 0.0


@pytest.mark.parametrize("zero_n, expected", [
    (1, (0.04 + 0.09) / 2),                               # smallest a^2 per row: 0.2^2, 0.3^2
    (2, (0.04 + 0.36 + 0.09 + 0.25) / 4),                 # = 0.185
    (3, (0.04 + 0.36 + 0.81 + 0.25 + 0.09 + 0.64) / 6),   # every scored piece = 0.365
    (5, (0.04 + 0.36 + 0.81 + 0.25 + 0.09 + 0.64) / 6),   # more than the scored pieces: all of them
])
def test_zero_term_is_mean_of_the_smallest_squares_over_scored_pieces(zero_n, expected):
    assert loss_of(zero_n=zero_n, zero_delta=1.0) == pytest.approx(expected, abs=1e-7)
    assert loss_of(zero_n=zero_n, zero_delta=0.1) == pytest.approx(0.1 * expected, abs=1e-8)


def test_zero_term_ranks_by_square_so_negative_scores_count_by_size():
    a = torch.tensor([[-0.05, 0.3, -0.6, 0.1]])
    scored = torch.ones(1, 4, dtype=torch.bool)
    # a^2 = 0.0025, 0.09, 0.36, 0.01 -> the two smallest: (0.0025 + 0.01) / 2
    assert loss_of(a, scored, torch.tensor([0.0]), zero_n=2, zero_delta=1.0) == pytest.approx(0.00625, abs=1e-8)


def test_zero_n_zero_turns_the_term_off():
    assert loss_of(zero_n=0, zero_delta=1.0) == 0.0


def test_sentence_without_scored_pieces():
    a = torch.tensor([[3.0, 4.0], [0.5, 0.25]])
    scored = torch.tensor([[False, False], [True, True]])
    labels = torch.tensor([1.0, 1.0])
    # row 0 has nothing scored: min = max = 0, so alpha adds 0 and gamma (0 - 1)^2 = 1
    # row 1: min 0.25, max 0.5 -> alpha (0 + 0.0625) / 2; gamma (1 + 0.25) / 2; zero (0.0625 only) / 1
    assert loss_of(a, scored, labels, soft_attention_alpha=1.0) == pytest.approx(0.03125, abs=1e-8)
    assert loss_of(a, scored, labels, soft_attention_gamma=1.0) == pytest.approx(0.625, abs=1e-7)
    assert loss_of(a, scored, labels, zero_n=1, zero_delta=1.0) == pytest.approx(0.0625, abs=1e-8)


def test_unscored_pieces_get_no_gradient():
    a = A.clone().requires_grad_(True)
    cfg = ModelConfig(soft_attention_alpha=0.1, soft_attention_gamma=0.1, zero_n=2, zero_delta=0.1,
                      soft_attention_beta=1.0)
    attention_losses(a, SCORED, LABELS, cfg, TARGETS, TARGET_MASK).backward()
    assert (a.grad[~SCORED] == 0).all()
    # row 0, piece 0: alpha 2*0.1*0.2/2 + zero 2*0.1*0.2/4 + beta 2*(0.2-1)/4 = 0.02 + 0.01 - 0.4
    assert a.grad[0, 0].item() == pytest.approx(-0.37, abs=1e-6)


# --- soft-attention head with hand-set weights --------------------------------------------------

T = 5
# hidden states are one-hot per position (D = T), so the attended sentence vector IS the weight vector
HIDDEN = torch.eye(T).expand(2, T, T).clone()                     # [B, T, D]
HEAD_SCORED = torch.tensor([[False, True, True, True, False],     # [CLS] w w w [SEP]
                            [False, True, True, False, False]])   # [CLS] w w [SEP] pad
EVIDENCE_IN = [0.7, 0.5, -0.3, 2.0, 3.0]                          # e_t = tanh(EVIDENCE_IN[t])
W, B = 2.0, 0.25                                                  # pre-activation z_t = W e_t + B


def hand_head(activation: str, square: bool) -> SoftAttentionHead:
    head = SoftAttentionHead(T, evidence_size=1, final_size=T, dropout=0.0, activation=activation, square=square)
    with torch.no_grad():
        head.evidence.weight.copy_(torch.tensor([EVIDENCE_IN]))     # [E=1, D]
        head.evidence.bias.zero_()
        head.weight.weight.fill_(W)
        head.weight.bias.fill_(B)
        head.final.weight.copy_(torch.eye(T))                      # tanh(sentence vector)
        head.final.bias.zero_()
        head.out.weight.fill_(1.0)                                 # logit = sum_d tanh(weights_d)
        head.out.bias.zero_()
    return head.eval()


ACT = {"soft": lambda z: 1 / (1 + math.exp(-z)), "sharp": math.exp, "linear": lambda z: z}


@pytest.mark.parametrize("activation", ["soft", "sharp", "linear"])
@pytest.mark.parametrize("square", [True, False])
def test_soft_attention_head_by_hand(activation, square):
    head = hand_head(activation, square)
    seen = []
    head.final.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    out, a = head(HIDDEN, HEAD_SCORED)
    assert out.shape == (2, 1) and a.shape == (2, T)
    logit = out[:, 0]
    (sentence,) = seen                                               # [B, D] = the normalised weights
    for b in range(2):
        raw = [ACT[activation](W * math.tanh(x) + B) if HEAD_SCORED[b, t] else 0.0
               for t, x in enumerate(EVIDENCE_IN)]
        assert a[b].tolist() == pytest.approx(raw, rel=1e-6, abs=1e-6)  # token score: unnormalised a
        assert (a[b][~HEAD_SCORED[b]] == 0).all()
        kept = [r * r if square else r for r in raw]
        weights = [k / sum(kept) for k in kept]
        assert sentence[b].tolist() == pytest.approx(weights, abs=1e-6)
        assert sentence[b].sum().item() == pytest.approx(1.0, abs=1e-6)
        assert logit[b].item() == pytest.approx(sum(math.tanh(w) for w in weights), abs=1e-6)


def test_soft_attention_head_literal_values():
    head = hand_head("soft", True)
    _, a = head(HIDDEN, HEAD_SCORED)
    # piece 1: z = 2 tanh(0.5) + 0.25 = 1.1742343..., sigmoid -> 0.76390...
    assert a[0, 1].item() == pytest.approx(0.7639095, abs=1e-6)
    # piece 2: z = 2 tanh(-0.3) + 0.25 = -0.3326252..., sigmoid -> 0.41760...
    assert a[0, 2].item() == pytest.approx(0.4176020, abs=1e-6)


def test_linear_square_weights_negative_scores_by_size():
    head = hand_head("linear", True)
    seen = []
    head.final.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    _, a = head(HIDDEN, HEAD_SCORED)
    assert a[1, 2].item() < 0                                        # z = 2 tanh(-0.3) + 0.25 < 0
    assert (seen[0] >= 0).all()


def test_linear_unsquared_weights_sum_to_one_when_their_sum_is_negative():
    head = hand_head("linear", False)
    with torch.no_grad():
        head.weight.bias.fill_(-2.0)                                 # every z < 0
    seen = []
    head.final.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    _, a = head(HIDDEN, HEAD_SCORED)
    assert (a[HEAD_SCORED] < 0).all()
    assert seen[0].sum(dim=1).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


def test_soft_attention_head_without_any_scored_piece_is_finite():
    head = hand_head("soft", True)
    out, a = head(HIDDEN, torch.zeros(2, T, dtype=torch.bool))
    assert a.abs().sum().item() == 0.0 and out.tolist() == [[0.0], [0.0]]  # empty sentence vector, tanh(0) = 0


def test_first_token_head_uses_position_zero_and_has_no_token_scores():
    head = FirstTokenHead(3, dropout=0.0)
    with torch.no_grad():
        head.out.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        head.out.bias.fill_(0.1)
    hidden = torch.tensor([[[1.0, 1.0, 2.0], [9.0, 9.0, 9.0]],
                           [[0.0, 0.5, -4.0], [9.0, 9.0, 9.0]]])
    out, scores = head(hidden, torch.ones(2, 2, dtype=torch.bool))
    assert scores is None
    # 1 - 2 + 1 + 0.1 = 0.1; 0 - 1 - 2 + 0.1 = -2.9
    assert out[:, 0].tolist() == pytest.approx([0.1, -2.9], abs=1e-6)


# --- the whole model ----------------------------------------------------------------------------

@pytest.fixture
def tiny_batch(tokenizer):
    sentences = [sent(["unbelievably", "good"], [1, 0]), sent(["ok"], [0]), sent(["@paulwalk", "said", "hi"], [1, 0, 0])]
    items, _ = encode(sentences, tokenizer, 32, targets=[[1.0, 0.0], [0.0], [1.0, 0.0, 0.0]])
    return collate(items, tokenizer)


def tiny_model(**changes) -> ZeroShotClassifier:
    cfg = ModelConfig(model_name="tiny-random", attention_evidence_size=8, final_hidden_layer_size=16, **changes)
    return build_model(cfg, seed=3).eval()


@pytest.mark.parametrize("loss, expected", [
    ("bce", (math.log(2) + math.log(1 + math.exp(2))) / 2),                 # 1.41003...
    ("mse", ((0.5 - 1) ** 2 + (1 / (1 + math.exp(-2))) ** 2) / 2),          # 0.51290...
])
def test_sentence_loss_bce_and_mse(loss, expected):
    model = tiny_model(sentence_loss=loss)
    logits, labels = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    got = model.loss(logits, None, None, None, labels, {}).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx({"bce": 1.4100379, "mse": 0.5129015}[loss], abs=1e-6)


def test_forward_outputs_and_loss_composition(tiny_batch):
    cfg_changes = dict(soft_attention_alpha=0.3, soft_attention_gamma=0.2, soft_attention_beta=0.5, zero_n=2,
                       zero_delta=0.4)
    model = tiny_model(**cfg_changes)
    outputs, loss = model(tiny_batch, tiny_batch["labels"])
    assert set(outputs) == {"sentence_logits", "sentence_scores", "token_scores"}
    a = outputs["token_scores"]
    assert a.shape == tiny_batch["input_ids"].shape
    scored = tiny_batch["word_index"] != -1
    assert (a[~scored] == 0).all() and (a[scored] > 0).all() and (a[scored] < 1).all()  # sigmoid
    torch.testing.assert_close(outputs["sentence_scores"], torch.sigmoid(outputs["sentence_logits"]))
    sentence = nn.functional.binary_cross_entropy_with_logits(outputs["sentence_logits"], tiny_batch["labels"])
    extra = attention_losses(a, scored, tiny_batch["labels"], model.cfg, tiny_batch["token_targets"],
                             tiny_batch["target_mask"])
    assert loss.item() == pytest.approx((sentence + extra).item(), abs=1e-6)
    no_loss_outputs, none = model(tiny_batch)
    assert none is None and torch.equal(no_loss_outputs["token_scores"], a)


def test_plain_head_model_gives_no_token_scores(tiny_batch):
    model = tiny_model(soft_attention=False)
    assert isinstance(model.head, FirstTokenHead)
    outputs, loss = model(tiny_batch, tiny_batch["labels"])
    assert outputs["token_scores"] is None
    expected = nn.functional.binary_cross_entropy_with_logits(outputs["sentence_logits"], tiny_batch["labels"])
    assert loss.item() == pytest.approx(expected.item(), abs=1e-7)


def test_padding_does_not_change_a_sentences_outputs(tokenizer):
    model = tiny_model()
    items, _ = encode([sent(["ok"]), sent(["a", "much", "longer", "sentence", "here"])], tokenizer, 32)
    together, _ = model(collate(items, tokenizer))
    alone, _ = model(collate(items[:1], tokenizer))
    torch.testing.assert_close(together["sentence_logits"][:1], alone["sentence_logits"], atol=1e-6, rtol=0)
    torch.testing.assert_close(together["token_scores"][:1, :3], alone["token_scores"], atol=1e-6, rtol=0)


# --- the seed's options: attend_sep, ce2 -------------------------------------------------------------

def test_end_tokens_are_the_special_tokens_after_the_first():
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 1]])  # the last row padded on the left
    scored = torch.tensor([[False, True, True, False, False], [False, True, False, False, False],
                           [False, False, True, True, False]])
    assert end_tokens(mask, scored).tolist() == [[False, False, False, True, False],
                                                 [False, False, True, False, False],
                                                 [False, False, False, False, True]]


def test_attend_sep_brings_the_end_token_into_min_max_and_zero_terms():
    # row 0: SEP at piece 3 holds 7.0 (above every word), row 1: SEP at piece 4 holds 9.0
    sep = torch.tensor([[False, False, False, True, False], [False, False, False, False, True]])
    # gamma with SEP: maxes 7.0 (label 1) and 9.0 (label 0) -> (36 + 81) / 2; without: 0.325
    assert loss_of(scored=SCORED | sep, soft_attention_gamma=1.0) == pytest.approx(58.5, abs=1e-5)
    low = A.clone()
    low[0, 3], low[1, 4] = 0.05, 0.1
    # alpha with SEP: mins 0.05 and 0.1 -> (0.0025 + 0.01) / 2; without: 0.065
    assert loss_of(a=low, scored=SCORED | sep, soft_attention_alpha=1.0) == pytest.approx(0.00625, abs=1e-7)
    # zero term, n = 1: smallest squares 0.0025 and 0.01 (the SEPs) -> mean 0.00625
    assert loss_of(a=low, scored=SCORED | sep, zero_n=1, zero_delta=1.0) == pytest.approx(0.00625, abs=1e-7)


def test_attend_sep_changes_loss_and_logit_but_never_a_word_score(tiny_batch):
    off, on = tiny_model(), tiny_model(attend_sep=True)  # same seed: the same weights
    (out_off, loss_off), (out_on, loss_on) = off(tiny_batch, tiny_batch["labels"]), on(tiny_batch, tiny_batch["labels"])
    scored = tiny_batch["word_index"] != -1
    sep = end_tokens(tiny_batch["attention_mask"], scored)
    assert sep.sum(dim=1).tolist() == [1, 1, 1]
    assert not torch.allclose(out_on["sentence_logits"], out_off["sentence_logits"])
    assert loss_on.item() != pytest.approx(loss_off.item(), abs=1e-6)
    # a word's score is the same a with or without SEP in the normalisation; SEP itself reports 0
    torch.testing.assert_close(out_on["token_scores"], out_off["token_scores"])
    assert (out_on["token_scores"][sep] == 0).all()
    seen = []
    on.head.register_forward_hook(lambda module, inputs, output: seen.append(output[1]))
    on(tiny_batch)
    assert (seen[0][sep] > 0).all()  # the head itself did attend to SEP


def test_ce2_is_cross_entropy_over_two_sigmoid_outputs(tiny_batch):
    model = tiny_model(sentence_loss="ce2", soft_attention_alpha=0.0, soft_attention_gamma=0.0, zero_delta=0.0)
    assert model.head.out.out_features == 2
    pair = torch.tensor([[0.5, 0.7], [0.9, 0.2]])
    labels = torch.tensor([1.0, 0.0])
    got = model.loss(pair[:, 1] - pair[:, 0], pair, None, None, labels, {}).item()
    # -log softmax: row 0 log(1 + e^-0.2), row 1 log(1 + e^-0.7)
    assert got == pytest.approx((math.log(1 + math.exp(-0.2)) + math.log(1 + math.exp(-0.7))) / 2, abs=1e-6)
    seen = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(output[0]))
    outputs, loss = model(tiny_batch, tiny_batch["labels"])
    sig = torch.sigmoid(seen[0])                                          # [B, 2]
    torch.testing.assert_close(outputs["sentence_scores"], torch.softmax(sig, dim=1)[:, 1])
    expected = nn.functional.cross_entropy(sig, tiny_batch["labels"].long())
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    lo, hi = 1 / (1 + math.e), 1 / (1 + math.exp(-1))                    # softmax of two values in [0, 1]
    assert ((outputs["sentence_scores"] > lo) & (outputs["sentence_scores"] < hi)).all()


def test_ce2_on_the_plain_head_uses_raw_logits(tiny_batch):
    model = tiny_model(sentence_loss="ce2", soft_attention=False)
    seen = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(output[0]))
    outputs, loss = model(tiny_batch, tiny_batch["labels"])
    torch.testing.assert_close(outputs["sentence_scores"], torch.softmax(seen[0], dim=1)[:, 1])
    expected = nn.functional.cross_entropy(seen[0], tiny_batch["labels"].long())
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


# --- initializers -------------------------------------------------------------------------------

def head_weights(initializer: str, seed: int = 3) -> dict[str, torch.Tensor]:
    cfg = ModelConfig(model_name="tiny-random", initializer_name=initializer)  # evidence 100, hidden 300
    return {k: v.clone() for k, v in build_model(cfg, seed).head.state_dict().items()}


@pytest.fixture(scope="module")
def initialized():
    return {name: head_weights(name) for name in ("glorot", "xavier", "normal")}


def test_initializers_are_deterministic_and_differ(initialized):
    again = head_weights("glorot")
    assert all(torch.equal(again[k], initialized["glorot"][k]) for k in again)
    other_seed = head_weights("glorot", seed=4)
    assert not torch.equal(other_seed["final.weight"], initialized["glorot"]["final.weight"])
    for first, second in (("glorot", "xavier"), ("glorot", "normal"), ("xavier", "normal")):
        assert not torch.equal(initialized[first]["final.weight"], initialized[second]["final.weight"])
    for weights in initialized.values():
        assert all((v == 0).all() for k, v in weights.items() if k.endswith(".bias"))


def test_initializer_distributions(initialized):
    """The seed's names: glorot = xavier normal, xavier = xavier uniform, normal = N(0, 1)."""
    w = {name: weights["final.weight"] for name, weights in initialized.items()}  # [300, 32]: 9,600 values
    bound = math.sqrt(6 / (32 + 300))                                            # 0.1344
    xavier_std = math.sqrt(2 / (32 + 300))                                       # 0.0776
    assert w["xavier"].abs().max().item() <= bound                               # uniform(-bound, bound)
    assert w["xavier"].std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert w["glorot"].std().item() == pytest.approx(xavier_std, rel=0.03)      # normal(0, xavier_std)
    assert (w["glorot"].abs() > bound).float().mean().item() == pytest.approx(0.083, abs=0.015)  # P(|z|>1.73)
    assert w["normal"].std().item() == pytest.approx(1.0, rel=0.03)
    assert w["normal"].mean().item() == pytest.approx(0.0, abs=0.03)


def test_build_model_leaves_the_global_rng_alone():
    torch.manual_seed(11)
    expected = torch.rand(2)
    torch.manual_seed(11)
    tiny_model()
    assert torch.equal(torch.rand(2), expected)


def test_build_model_freezes_encoder_layers_but_not_the_head():
    model = tiny_model(freeze_bert_layers_up_to=2)
    assert {p.requires_grad for p in model.encoder.encoder.parameters()} == {False}
    assert {p.requires_grad for p in model.head.parameters()} == {True}
