"""zs_core.config: flat keys split over the stage dataclasses, type checks, seed .conf files."""
import dataclasses
from pathlib import Path

import pytest

from zs_core.config import (KEYS, DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig, build_config,
                            read_seed_conf)
from zs_core.errors import InputError

SEED_CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "seed_configs"
SEED_FILES = sorted(SEED_CONFIGS.glob("*.conf")) if SEED_CONFIGS.is_dir() else []


def error(flat, **kwargs) -> str:
    with pytest.raises(InputError) as e:
        build_config(flat, "space.yaml", **kwargs)
    message = str(e.value)
    assert "\n" not in message and message.startswith("space.yaml: ")
    return message


def test_empty_mapping_gives_all_defaults():
    assert build_config({}, "x") == RunConfig()
    assert RunConfig().model.model_name == "minilm" and RunConfig().train.learning_rate == 2e-5


def test_keys_are_split_over_the_stages():
    cfg = build_config({"max_seq_length": 64, "attention_activation": "sharp", "learning_rate": 1e-3,
                        "top_count": 2, "soft_attention": False}, "x")
    assert cfg.data == DataConfig(max_seq_length=64)
    assert cfg.model == ModelConfig(attention_activation="sharp", soft_attention=False)
    assert cfg.train == TrainConfig(learning_rate=1e-3)
    assert cfg.eval == EvalConfig(top_count=2)


def test_flat_round_trips_and_holds_every_key():
    cfg = build_config({"zero_n": 5, "token_input_dir": "/tmp/x", "seed": 7}, "x")
    flat = cfg.flat()
    assert set(flat) == set(KEYS)
    assert flat["zero_n"] == 5 and flat["token_input_dir"] == "/tmp/x" and flat["token_input_filename"] is None
    assert build_config(flat, "saved.json") == cfg


def test_stages_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().model.zero_n = 4


def test_unknown_key_is_named():
    message = error({"learning_rate": 1e-4, "lerning_rate": 1e-4})
    assert "unknown key 'lerning_rate'" in message
    assert "learning_rate" in message.split("expected one of")[1]


@pytest.mark.parametrize("key, value, kind", [
    ("max_seq_length", "abc", "int"),
    ("num_train_epochs", 2.5, "int"),
    ("seed", True, "int"),
    ("soft_attention", "yes", "bool"),
    ("soft_attention", 1, "bool"),
    ("learning_rate", True, "float"),
    ("learning_rate", "fast", "float"),
    ("model_name", 3, "str"),
    ("token_input_dir", 5, "str"),
])
def test_wrong_type_names_key_and_expected_type(key, value, kind):
    message = error({key: value})
    assert f"key {key!r} expects {kind}, got {value!r}" in message


@pytest.mark.parametrize("key, raw, expected", [
    ("soft_attention", "True", True),
    ("square_attention", "False", False),
    ("lowercase", "true", True),
    ("learning_rate", "2e-5", 2e-5),
    ("hid_to_attn_dropout", "0.10 ", 0.1),       # trailing space, as real seed files have
    ("num_train_epochs", " 3", 3),
    ("num_train_epochs", 3.0, 3),                 # a YAML float that is a whole number
    ("learning_rate", 1, 1.0),                    # an int where a float is expected
    ("token_input_dir", "None", None),
    ("token_input_dir", "", None),
    ("token_input_dir", None, None),
    ("token_input_filename", " preds.tsv ", "preds.tsv"),
])
def test_seed_style_strings_coerce(key, raw, expected):
    cfg = build_config({key: raw}, "x")
    value = cfg.flat()[key]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("key, value, allowed", [
    ("attention_activation", "tanh", "soft, sharp, linear"),
    ("initializer_name", "he", "glorot, xavier, normal"),
    ("sentence_loss", "ce", "bce, mse"),
])
def test_choices_are_enforced(key, value, allowed):
    message = error({key: value})
    assert f"key {key!r} must be one of {allowed}, got {value!r}" in message


@pytest.mark.parametrize("key, value", [("attention_activation", "linear"), ("initializer_name", "normal"),
                                        ("sentence_loss", "mse")])
def test_every_choice_is_accepted(key, value):
    assert build_config({key: value}, "x").flat()[key] == value


def test_seed_only_keys_need_allow_seed_keys():
    assert "unknown key 'experiment_name'" in error({"experiment_name": "a"})
    cfg = build_config({"experiment_name": "a", "output_dir": "models/", "seed": "3"}, "x", allow_seed_keys=True)
    assert cfg == RunConfig(train=TrainConfig(seed=3))
    assert "unknown key 'not_a_key'" in error({"not_a_key": 1}, allow_seed_keys=True)


@pytest.mark.skipif(not SEED_FILES, reason=f"no seed .conf files in {SEED_CONFIGS}")
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
def test_seed_conf_files_build(path):
    flat = read_seed_conf(path)
    assert all(value == value.strip() for value in flat.values())
    cfg = build_config(flat, str(path), allow_seed_keys=True)
    assert cfg.model.model_name == flat["model_name"] == "minilm"
    assert cfg.train.seed == int(flat["seed"]) == 15
    assert cfg.data.lowercase is True


@pytest.mark.skipif(not (SEED_CONFIGS / "train_soft_attention.conf").is_file(), reason="seed train conf absent")
def test_seed_train_conf_values():
    cfg = build_config(read_seed_conf(SEED_CONFIGS / "train_soft_attention.conf"), "train.conf",
                       allow_seed_keys=True)
    assert cfg.train == TrainConfig(num_train_epochs=2, learning_rate=2e-5, adam_epsilon=1e-7, seed=15)
    assert cfg.model == ModelConfig()  # the paper's soft-attention settings are the defaults
    assert cfg.data == DataConfig(lowercase=True)


def test_unknown_key_in_conf_is_an_error(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[config]\nmodel_name = minilm\nsoft_atention = True\n", encoding="utf-8")
    flat = read_seed_conf(path)
    assert flat == {"model_name": "minilm", "soft_atention": "True"}
    with pytest.raises(InputError, match=r"bad\.conf: unknown key 'soft_atention'"):
        build_config(flat, str(path), allow_seed_keys=True)


def test_conf_value_of_wrong_type_is_an_error(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[config]\nmax_seq_length = 12.5\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"key 'max_seq_length' expects int, got '12.5'"):
        build_config(read_seed_conf(path), str(path), allow_seed_keys=True)


@pytest.mark.parametrize("content, reason", [
    (None, "no such file"),
    (b"model_name = minilm\n", "not an INI file"),
    (b"[other]\nmodel_name = minilm\n", "expected a [config] section"),
    (b"[config]\nmodel_name = caf\xe9\n", "not UTF-8"),
])
def test_read_seed_conf_errors(tmp_path, content, reason):
    path = tmp_path / "x.conf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as e:
        read_seed_conf(path)
    assert str(e.value).startswith(f"{path}: {reason}")
