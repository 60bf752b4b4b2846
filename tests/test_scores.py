"""zs_core.scores: every head's word scores against transformers' own output_attentions, model_scores."""
import numpy as np
import pytest
import torch

from zs_core.batching import collate, encode
from zs_core.config import ModelConfig
from zs_core.data import Sentence
from zs_core.encoders import load_encoder
from zs_core.model import build_model
from zs_core.scores import head_piece_scores, iter_head_scores, model_scores

SENTENCES = [
    ("@paulwalk", "loves", "#hashtag", "tokenization"),
    ("ok",),
    ("unbelievably", "long", "tweet", "from", "new", "york", "city", "tonight", "!!"),
    ("hi", "there"),
    ("the", "transformers", "library"),
]


def sent(words, gold=None) -> Sentence:
    return Sentence(tuple(words), None if gold is None else tuple(float(x) for x in gold))


def reference_word_scores(encoder, tokenizer, words) -> np.ndarray:
    """[P=2, L, H, W] from one unpadded pass of transformers, looping over layers, heads and words."""
    enc = tokenizer(list(words), is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        attentions = encoder(**enc, output_attentions=True).attentions       # L x [1, H, T, T]
    word_ids = enc.word_ids()
    pieces = [[t for t, wid in enumerate(word_ids) if wid == w] for w in range(len(words))]
    n_layers, n_heads = len(attentions), attentions[0].shape[1]
    out = np.zeros((2, n_layers, n_heads, len(words)))
    for layer in range(n_layers):
        for head in range(n_heads):
            att = attentions[layer][0, head].double().numpy()                 # [query, key]; no padding
            received = att.mean(axis=0)                                       # mean over query rows
            cls = att[0]
            for w, ts in enumerate(pieces):
                out[0, layer, head, w] = received[ts].max()
                out[1, layer, head, w] = cls[ts].max()
    return out


def check_parity(encoder, tokenizer, batch_size):
    items, _ = encode([sent(w) for w in SENTENCES], tokenizer, 128)
    seen = []
    for idx, scores in iter_head_scores(encoder, items, tokenizer, batch_size):
        n_layers, n_heads = encoder.config.num_hidden_layers, encoder.config.num_attention_heads
        assert scores.shape == (len(idx), 2, n_layers, n_heads, max(items[i].n_words for i in idx))
        for row, i in enumerate(idx):
            expected = reference_word_scores(encoder, tokenizer, SENTENCES[i])
            n = len(SENTENCES[i])
            np.testing.assert_allclose(scores[row, ..., :n].numpy(), expected, atol=1e-6, rtol=0)
            assert (scores[row, ..., n:] == 0).all()                          # word padding
        seen.extend(idx)
    assert sorted(seen) == list(range(len(SENTENCES)))


def test_head_scores_match_transformers_on_tiny_random(tiny_eager, tokenizer):
    check_parity(tiny_eager, tokenizer, batch_size=5)  # one batch, padded to the longest


def test_head_scores_match_transformers_on_minilm(minilm_eager, tokenizer):
    check_parity(minilm_eager, tokenizer, batch_size=3)  # two batches of different padded lengths


def test_head_piece_scores_by_hand():
    # one layer, one head, 3 positions of which the last is padding
    att = torch.tensor([[[[0.5, 0.25, 0.25],
                          [0.1, 0.7, 0.2],
                          [0.3, 0.3, 0.4]]]])                                 # [B=1, H=1, T, T]
    mask = torch.tensor([[1, 1, 0]])
    out = head_piece_scores([att, 2 * att], mask)                             # [B, P, L, H, T]
    assert out.shape == (1, 2, 2, 1, 3)
    # received: mean over the real query rows 0 and 1 only (the padded row 2 is left out)
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor([0.3, 0.475, 0.225]))
    torch.testing.assert_close(out[0, 0, 1, 0], torch.tensor([0.6, 0.95, 0.45]))
    # cls: query row 0
    torch.testing.assert_close(out[0, 1, 0, 0], torch.tensor([0.5, 0.25, 0.25]))
    only_cls = head_piece_scores([att], mask, poolings=("cls",))
    assert only_cls.shape == (1, 1, 1, 1, 3) and torch.equal(only_cls[0, 0], out[0, 1, :1])


def test_unknown_pooling_is_an_error():
    with pytest.raises(ValueError, match="unknown pooling 'mean'"):
        head_piece_scores([torch.ones(1, 1, 2, 2)], torch.ones(1, 2), poolings=("mean",))


def test_sdpa_encoder_is_refused(tokenizer):
    items, _ = encode([sent(["a", "b"])], tokenizer, 16)
    encoder = load_encoder("tiny-random", attentions=False)
    with pytest.raises(ValueError, match="returned no attention maps"):
        next(iter_head_scores(encoder, items, tokenizer, 1))


# --- model_scores ------------------------------------------------------------------------------------

def tiny(soft_attention: bool):
    cfg = ModelConfig(model_name="tiny-random", soft_attention=soft_attention, attention_evidence_size=8,
                      final_hidden_layer_size=16)
    return build_model(cfg, seed=1)


def test_predict_word_scores_in_item_order(tokenizer):
    model = tiny(True)
    items, _ = encode([sent(w) for w in SENTENCES], tokenizer, 128)
    probs, words, _ = model_scores(model, items, tokenizer, batch_size=2)
    assert not model.training
    assert [len(w) for w in words] == [len(s) for s in SENTENCES]
    for i, words_i in enumerate(SENTENCES):
        batch = tokenizer(list(words_i), is_split_into_words=True, return_tensors="pt")
        word_ids = batch.word_ids()
        batch["word_index"] = torch.tensor([[-1 if w is None else w for w in word_ids]])
        with torch.no_grad():
            out, _ = model(batch)
        assert probs[i] == pytest.approx(out["sentence_scores"].item(), abs=1e-6)
        a = out["token_scores"][0]
        expected = [max(a[t].item() for t, wid in enumerate(word_ids) if wid == w) for w in range(len(words_i))]
        assert words[i] == pytest.approx(expected, abs=1e-6)


def test_predict_cut_off_words_score_zero(tokenizer):
    items, truncated = encode([sent(SENTENCES[2])], tokenizer, 6)  # [CLS] un ##bel ##ie ##va [SEP]
    assert truncated == 8
    _, (words,), _ = model_scores(tiny(True), items, tokenizer, batch_size=4)
    assert len(words) == 9 and words[0] > 0 and words[1:] == [0.0] * 8


def test_predict_plain_head_has_no_word_scores(tokenizer):
    items, _ = encode([sent(w) for w in SENTENCES], tokenizer, 128)
    probs, words, _ = model_scores(tiny(False), items, tokenizer, batch_size=2)
    assert words is None and len(probs) == 5 and all(0 < p < 1 for p in probs)


def test_model_scores_loss_is_the_objective_over_all_sentences(tokenizer):
    """The loss is the model's own training objective, averaged over sentences (batches weighted by size)."""
    cfg = ModelConfig(model_name="tiny-random", attention_evidence_size=8, final_hidden_layer_size=16,
                      zero_delta=0.0)  # every other term is a mean over sentences
    model = build_model(cfg, seed=1).eval()
    sentences = [Sentence(tuple(w), tuple([1.0] + [0.0] * (len(w) - 1)) if i % 2 else tuple([0.0] * len(w)))
                 for i, w in enumerate(SENTENCES)]
    items, _ = encode(sentences, tokenizer, 128)
    loss = model_scores(model, items, tokenizer, batch_size=2).loss
    with torch.no_grad():
        whole, by_hand = collate(items, tokenizer), model_scores(model, items, tokenizer, batch_size=5).loss
        _, expected = model(whole, whole["labels"])
    assert by_hand == pytest.approx(expected.item(), abs=1e-6)
    assert loss == pytest.approx(expected.item(), abs=1e-6)
