"""zs_core.seed_conf: a seed .conf means what it meant in the seed (defaults, fixed behaviours, steps),
unsupported settings are refused, and the paper's FCE trial conf trains the same configuration as
search_spaces/paper.yaml."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweep.seed_conf import read_seed_conf, seed_config, stage_conf
from sweep.space import load_sweep
from zs_core.config import ModelConfig, build_config
from zs_core.errors import InputError
from zs_core.protocol import model_method

ROOT = Path(__file__).resolve().parents[1]
CONFS = Path(__file__).resolve().parent / "seed_confs"
SHARED = ROOT.parent / "shared" / "seed_configs"
SHARED_FILES = sorted(SHARED.glob("*.conf")) if SHARED.is_dir() else []
PAPER_DATA = ["data.dataset=wnut16", "model_name=minilm"]  # fce_v1 and roberta-base are not shipped


def conf_config(name: str, stage: str = "train", **changes: str):
    raw = {**read_seed_conf(CONFS / name), **changes}
    return seed_config(raw, name, stage)


def test_omitted_keys_take_the_seeds_defaults_not_zs_sweeps():
    # soft_gold: gamma and beta given; alpha, square_attention, zero_n, zero_delta omitted
    cfg = conf_config("soft_gold_fce.conf")
    m = cfg.model
    assert (m.soft_attention_gamma, m.soft_attention_beta) == (0.1, 0.1)
    assert (m.soft_attention_alpha, m.square_attention, m.zero_n, m.zero_delta) == (0.0, False, 0, 0.0)
    # zs-sweep's own defaults differ: its YAML without these keys means alpha 0.1, squared, zero term on
    assert (ModelConfig().soft_attention_alpha, ModelConfig().square_attention, ModelConfig().zero_delta) == \
        (0.1, True, 0.1)
    assert conf_config("soft_gold_fce.conf", soft_attention="").model.soft_attention is False


def test_what_the_seeds_code_always_did_is_explicit():
    cfg = conf_config("soft_gold_fce.conf")
    assert (cfg.model.attend_sep, cfg.model.sentence_loss, cfg.train.warmup_unit) == (True, "ce2", "sentences")
    assert cfg.train.eval_steps == 250  # logging_steps: the seed evaluated and saved every that many steps
    assert cfg.model.initializer_name == "xavier"  # the seed's name (xavier uniform), kept as it is
    assert cfg.train.token_input_filename == "fce-public.{mode}.original.tsv"
    assert conf_config("soft_gold_fce.conf", logging_steps="").train.eval_steps == 0  # per epoch


def test_the_misspelt_beta_is_accepted_and_sets_nothing_as_in_the_seed():
    raw = read_seed_conf(CONFS / "eval_soft_gold_wnut16.conf")
    assert raw["soft_attentiong_beta"] == "0.1"
    assert seed_config(raw, "e.conf", "evaluate").model.soft_attention_beta == 0.0
    assert stage_conf(CONFS / "eval_soft_gold_wnut16.conf", "evaluate")["eval_results_filaname"] == \
        "token_results.txt"


@pytest.mark.parametrize("changes, stage, expected", [
    ({"make_all_labels_equal_max": "False"}, "train", "make_all_labels_equal_max = False"),
    ({"is_seq_class": "maybe"}, "train", "key 'is_seq_class' expects bool, got 'maybe'"),
    ({"logging_steps": "0"}, "train", "key 'logging_steps' must be at least 1"),
    ({"logging_steps": "5.5"}, "train", "key 'logging_steps' expects a whole number"),
    ({"soft_atention": "True"}, "train", "unknown key 'soft_atention'"),
])
def test_settings_zs_sweep_cannot_reproduce_are_refused(changes, stage, expected):
    with pytest.raises(InputError) as e:
        conf_config("paper_fce_trial3.conf", stage, **changes)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_evaluation_ignores_the_training_only_flags_as_the_seed_did():
    # the seed's evaluation script set make_all_labels_equal_max and is_seq_class itself
    assert conf_config("eval_soft_gold_wnut16.conf", "evaluate", is_seq_class="False").eval.importance_threshold == 0.5


def test_a_token_level_conf_is_the_supervised_ceiling():
    # the seed's is_seq_class = False: a token classifier trained on the gold token labels
    model = conf_config("paper_fce_trial3.conf", "train", is_seq_class="False").model
    assert (model.is_seq_class, model_method(model)) == (False, "supervised")
    assert model_method(conf_config("paper_fce_trial3.conf", "train").model) == "soft_attention"


def paper_pair():
    conf = load_sweep(CONFS / "paper_fce_trial3.conf", ["model_name=minilm", "data.dir=../shared/data/fce",
                                                        "data.positive_labels=[i]"])
    yaml = load_sweep(ROOT / "search_spaces" / "paper.yaml")
    return conf, yaml


def test_the_paper_conf_and_paper_yaml_are_one_configuration():
    conf, yaml = paper_pair()
    assert build_config(conf.fixed, "conf").flat() == build_config(yaml.fixed, "yaml").flat()
    assert conf.tune.seeds == yaml.tune.seeds == (9,)
    assert conf.data == yaml.data
    cfg = build_config(yaml.fixed, "yaml")
    assert (cfg.train.num_train_epochs, cfg.train.eval_steps, cfg.model.square_attention, cfg.model.zero_delta) == \
        (20, 500, False, 0.0)


@pytest.mark.slow
def test_the_paper_conf_and_paper_yaml_train_the_same_leaderboard_columns(tmp_path):
    """Both through `python -m sweep.run ... --smoke-test` (tiny-random, 1 epoch, 32 wnut16 sentences)."""
    from sweep.leaderboard import config_columns

    boards = []
    for source in (CONFS / "paper_fce_trial3.conf", ROOT / "search_spaces" / "paper.yaml"):
        out = tmp_path / source.suffix.strip(".")
        done = subprocess.run([sys.executable, "-m", "sweep.run", str(source), *PAPER_DATA, "--smoke-test",
                               "--output", str(out), "--num-cpus", "2"], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        (board,) = out.glob("*/leaderboard.parquet")
        boards.append(pd.read_parquet(board))
    conf, yaml = (b[b["method"] != "random"].reset_index(drop=True) for b in boards)
    columns = config_columns(yaml)
    assert columns == config_columns(conf) and {"attend_sep", "sentence_loss", "eval_steps"} <= set(columns)
    pd.testing.assert_frame_equal(conf[columns], yaml[columns])
    assert list(conf["seed"]) == list(yaml["seed"]) == [9, 10]
    assert conf["dev/sent_f1"].tolist() == yaml["dev/sent_f1"].tolist()  # same config, seed, CPU: same numbers


@pytest.mark.skipif(not SHARED_FILES, reason=f"no seed .conf files in {SHARED}")
@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_the_shared_seed_confs_load(path):
    stage = {"train": "train", "pred": "predict", "eval": "evaluate"}[path.name.split("_")[0]]
    raw = stage_conf(path, stage)
    assert all(value == value.strip() for value in raw.values())
    cfg = seed_config(raw, path.name, stage)
    assert cfg.model.model_name == "minilm" and cfg.train.seed == 15 and cfg.data.lowercase is True


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


def test_conf_value_of_wrong_type_is_an_error(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[config]\nmax_seq_length = 12.5\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"key 'max_seq_length' expects int, got '12.5'"):
        stage_conf(path, "train")
