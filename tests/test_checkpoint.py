"""zs_core.checkpoint: a save/load round trip gives the same outputs; only checkpoints load."""
import json

import pytest
import torch

from zs_core.batching import collate, encode
from zs_core.checkpoint import CONFIG_FILE, HEAD_FILE, is_checkpoint, load_checkpoint, save_checkpoint
from zs_core.config import build_config
from zs_core.data import Sentence
from zs_core.encoders import load_encoder
from zs_core.errors import InputError
from zs_core.model import FirstTokenHead, SoftAttentionHead, build_model

WORDS = [("unbelievably", "good", "@paulwalk"), ("ok",), ("#hashtag", "tokenization", "is", "fun", "!")]


def trained_looking_model(cfg):
    """The tiny model with every weight moved off its fresh value, so a load of fresh weights would show."""
    model = build_model(cfg.model, cfg.train.seed)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return model.eval()


def outputs(model, tokenizer):
    items, _ = encode([Sentence(w, None) for w in WORDS], tokenizer, 32)
    with torch.no_grad():
        out, _ = model(collate(items, tokenizer))
    return out


@pytest.mark.parametrize("soft_attention", [True, False])
def test_round_trip_gives_the_same_outputs(tmp_path, tokenizer, soft_attention):
    cfg = build_config({"model_name": "tiny-random", "soft_attention": soft_attention, "attention_evidence_size": 8,
                        "final_hidden_layer_size": 16, "attention_activation": "sharp", "seed": 4}, "test")
    model = trained_looking_model(cfg)
    before = outputs(model, tokenizer)
    folder = save_checkpoint(tmp_path / "ckpt", model, tokenizer, cfg, extra={"epoch": 2, "dev/sent_f1": 0.5})
    assert folder == tmp_path / "ckpt" and is_checkpoint(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary folder left behind
    meta = json.loads((folder / CONFIG_FILE).read_text())
    assert meta["epoch"] == 2 and meta["dev/sent_f1"] == 0.5 and meta["config"] == cfg.flat()

    loaded, loaded_tokenizer, loaded_cfg = load_checkpoint(folder)
    assert loaded_cfg == cfg
    assert not loaded.training
    assert isinstance(loaded.head, SoftAttentionHead if soft_attention else FirstTokenHead)
    assert loaded_tokenizer(list(WORDS[2]), is_split_into_words=True)["input_ids"] == \
        tokenizer(list(WORDS[2]), is_split_into_words=True)["input_ids"]
    after = outputs(loaded, loaded_tokenizer)
    torch.testing.assert_close(after["sentence_logits"], before["sentence_logits"], atol=1e-6, rtol=0)
    torch.testing.assert_close(after["sentence_scores"], before["sentence_scores"], atol=1e-6, rtol=0)
    if soft_attention:
        torch.testing.assert_close(after["token_scores"], before["token_scores"], atol=1e-6, rtol=0)
    else:
        assert after["token_scores"] is None and before["token_scores"] is None
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_load_with_attentions_uses_eager(tmp_path, tokenizer):
    cfg = build_config({"model_name": "tiny-random", "attention_evidence_size": 8, "final_hidden_layer_size": 16},
                       "test")
    folder = save_checkpoint(tmp_path / "ckpt", trained_looking_model(cfg), tokenizer, cfg)
    assert load_checkpoint(folder)[0].encoder.config._attn_implementation == "sdpa"
    assert load_checkpoint(folder, attentions=True)[0].encoder.config._attn_implementation == "eager"
    encoder = load_encoder(str(folder / "encoder"), attentions=True)  # usable on its own as an encoder folder
    assert encoder.config.num_hidden_layers == 2


def test_saving_again_replaces_the_checkpoint(tmp_path, tokenizer):
    cfg = build_config({"model_name": "tiny-random", "attention_evidence_size": 8, "final_hidden_layer_size": 16},
                       "test")
    first = trained_looking_model(cfg)
    save_checkpoint(tmp_path / "ckpt", first, tokenizer, cfg, extra={"epoch": 1})
    (tmp_path / "ckpt" / "stale.txt").write_text("from the first save")
    second = build_model(cfg.model, seed=99).eval()
    save_checkpoint(tmp_path / "ckpt", second, tokenizer, cfg, extra={"epoch": 2})
    assert not (tmp_path / "ckpt" / "stale.txt").exists()
    loaded, _, _ = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(loaded.head.out.weight, second.head.out.weight)
    assert not torch.equal(loaded.head.out.weight, first.head.out.weight)
    assert json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())["epoch"] == 2


@pytest.mark.parametrize("files", [[], [CONFIG_FILE], [HEAD_FILE], ["config.json", "model.safetensors"]])
def test_a_folder_that_is_not_a_checkpoint_is_an_input_error(tmp_path, files):
    for name in files:
        (tmp_path / name).write_text("{}")
    assert not is_checkpoint(tmp_path)
    with pytest.raises(InputError, match=r"not a zs-sweep checkpoint \(expected zs_config\.json and head\.safetensors\)"):
        load_checkpoint(tmp_path)


def test_a_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a zs-sweep checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
