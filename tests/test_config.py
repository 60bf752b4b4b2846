"""zs_core.config: flat keys split over the stage dataclasses, type checks (seed .conf files:
test_seed_conf.py)."""
import pytest
from pydantic import ValidationError

from zs_core.config import KEYS, DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig, build_config
from zs_core.errors import InputError


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
    with pytest.raises(ValidationError, match="frozen"):
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
])
def test_seed_conf_strings_are_converted(key, raw, expected):
    """strict=False: a seed .conf's values are strings."""
    cfg = build_config({key: raw}, "x.conf", strict=False)
    value = cfg.flat()[key]
    assert value == expected and type(value) is type(expected)
    assert "expects" in error({key: raw})  # a YAML value must have its type


@pytest.mark.parametrize("key, raw, expected", [
    ("learning_rate", 1, 1.0),                    # an int where a float is expected
    ("token_input_dir", None, None),
    ("soft_attention", False, False),
])
def test_yaml_values_are_taken_as_typed(key, raw, expected):
    value = build_config({key: raw}, "x").flat()[key]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("key, value, allowed", [
    ("attention_activation", "tanh", "soft, sharp, linear"),
    ("initializer_name", "he", "glorot, xavier, normal"),
    ("sentence_loss", "ce", "bce, mse, ce2"),
    ("warmup_unit", "epochs", "steps, sentences"),
])
def test_choices_are_enforced(key, value, allowed):
    message = error({key: value})
    assert f"key {key!r} must be one of {allowed}, got {value!r}" in message


@pytest.mark.parametrize("key, value", [("attention_activation", "linear"), ("initializer_name", "normal"),
                                        ("sentence_loss", "mse"), ("sentence_loss", "ce2"),
                                        ("warmup_unit", "sentences")])
def test_every_choice_is_accepted(key, value):
    assert build_config({key: value}, "x").flat()[key] == value


@pytest.mark.parametrize("key, value, low", [("eval_steps", -1, 0), ("zero_n", -2, 0), ("num_train_epochs", 0, 1),
                                             ("per_device_train_batch_size", 0, 1)])
def test_counts_have_a_floor(key, value, low):
    assert f"key {key!r} must be at least {low}, got {value}" in error({key: value})


def test_the_seed_options_default_off():
    cfg = build_config({}, "x")
    assert (cfg.model.attend_sep, cfg.model.sentence_loss) == (False, "bce")
    assert (cfg.train.eval_steps, cfg.train.warmup_unit) == (0, "steps")
