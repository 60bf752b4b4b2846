"""zs_core.encoders: built-in names, local folders, the tiny random encoder, freezing, eager vs sdpa."""
import json

import pytest
import torch

from zs_core.encoders import (
    freeze_layers,
    layer_head_counts,
    load_encoder,
    load_tokenizer,
    minilm_path,
    tiny_random_encoder,
)
from zs_core.errors import InputError


def test_minilm_is_6_layers_by_12_heads(minilm_eager):
    assert layer_head_counts(minilm_eager) == (6, 12)
    assert minilm_eager.config.hidden_size == 384
    assert sum(p.numel() for p in minilm_eager.parameters()) == 22_713_216  # "22.7M parameters"
    assert minilm_eager.config._attn_implementation == "eager"


def test_minilm_tokenizer_is_fast_and_uncased(tokenizer):
    assert tokenizer.is_fast
    assert tokenizer.tokenize("Hello World") == ["hello", "world"]


def test_tiny_random_shape(tokenizer):
    model = tiny_random_encoder()
    assert layer_head_counts(model) == (2, 4)
    assert model.config.hidden_size == 32
    assert model.config.vocab_size == tokenizer.vocab_size == 30522
    assert model.config._attn_implementation == "eager"


def test_tiny_random_is_the_same_on_every_build_and_leaves_the_rng_alone():
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    first = tiny_random_encoder().state_dict()
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's RNG stream is untouched
    torch.manual_seed(99)
    second = tiny_random_encoder().state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert first["encoder.layer.0.attention.self.query.weight"].std() > 0  # really random, not zeros


@pytest.mark.parametrize("attentions, impl", [(True, "eager"), (False, "sdpa")])
def test_load_encoder_picks_attention_implementation(attentions, impl):
    assert load_encoder("tiny-random", attentions=attentions).config._attn_implementation == impl


def test_eager_returns_attention_maps(tiny_eager, tokenizer):
    batch = tokenizer(["a b c"], return_tensors="pt")
    out = tiny_eager(**batch, output_attentions=True)
    assert len(out.attentions) == 2
    assert out.attentions[0].shape == (1, 4, 5, 5)  # [B, H, T, T]: [CLS] a b c [SEP]
    torch.testing.assert_close(out.attentions[1].sum(-1), torch.ones(1, 4, 5))


def test_unknown_name_is_an_input_error(tmp_path):
    missing = str(tmp_path / "nope")
    for load in (load_encoder, load_tokenizer):
        with pytest.raises(InputError, match=r"unknown encoder '.*nope': expected one of minilm, tiny-random"):
            load(missing)


def test_folder_without_config_json_is_an_input_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    for load in (load_encoder, load_tokenizer):
        with pytest.raises(InputError, match=r"not a Hugging Face model folder \(no config\.json\)"):
            load(str(tmp_path))


def test_folder_with_a_bad_config_is_an_input_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(InputError, match=r"not a loadable Hugging Face model folder"):
        load_encoder(str(tmp_path))


def test_local_folder_loads_like_the_original(tmp_path, tokenizer):
    model = tiny_random_encoder("sdpa")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again = load_encoder(str(tmp_path), attentions=True)
    assert again.config._attn_implementation == "eager"
    ours, theirs = model.state_dict(), again.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    words = ["unbelievably", "@paulwalk"]
    assert (load_tokenizer(str(tmp_path))(words, is_split_into_words=True)["input_ids"]
            == tokenizer(words, is_split_into_words=True)["input_ids"])


def test_minilm_path_holds_a_model_folder():
    assert (minilm_path() / "config.json").is_file()


def frozen(module) -> set[bool]:
    return {p.requires_grad for p in module.parameters()}


def test_freeze_layers_freezes_embeddings_and_the_first_n_layers_only():
    model = tiny_random_encoder()
    freeze_layers(model, 1)
    assert frozen(model.embeddings) == {False}
    assert frozen(model.encoder.layer[0]) == {False}
    assert frozen(model.encoder.layer[1]) == {True}
    assert frozen(model.pooler) == {True}
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    expected = sum(p.numel() for p in model.embeddings.parameters()) + sum(
        p.numel() for p in model.encoder.layer[0].parameters())
    assert n_frozen == expected


def test_freeze_all_layers_and_zero_is_a_no_op():
    model = tiny_random_encoder()
    freeze_layers(model, 0)
    assert frozen(model) == {True}
    freeze_layers(model, 2)
    assert frozen(model.encoder) == {False} and frozen(model.pooler) == {True}


def test_freezing_too_many_layers_is_an_input_error():
    model = tiny_random_encoder()
    with pytest.raises(InputError, match=r"freeze_bert_layers_up_to=3: the encoder has only 2 layers"):
        freeze_layers(model, 3)
    assert frozen(model) == {True}  # nothing half-frozen


def test_eager_and_sdpa_give_the_same_hidden_states(minilm_eager, tokenizer):
    sdpa = load_encoder("minilm", attentions=False).eval()
    assert sdpa.config._attn_implementation == "sdpa"
    batch = tokenizer([["a", "short", "one"], ["a", "much", "longer", "sentence", "with", "padding", "@paulwalk"]],
                      is_split_into_words=True, padding=True, return_tensors="pt")
    assert batch["attention_mask"][0].tolist().count(0) > 0  # padding present
    with torch.no_grad():
        eager_out = minilm_eager(**batch).last_hidden_state
        sdpa_out = sdpa(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(eager_out[real], sdpa_out[real], atol=1e-5, rtol=0)
