"""sweep.space: YAML -> checked Sweep -> Tune space; overrides; and every bad input of sweep.run (exit 2)."""
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import yaml

from sweep.space import load_sweep, reported_metrics, smoke, to_tune_space
from zs_core.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
BASE = {"name": "t", "data": {"dataset": "wnut16", "limit": {"train": 32, "dev": 32, "test": 32}},
        "fixed": {"model_name": "tiny-random", "num_train_epochs": 1},
        "search": {"learning_rate": {"loguniform": [1.0e-5, 1.0e-3]}},
        "tune": {"num_samples": 2, "seeds": [1, 2], "resources_per_trial": {"cpu": 1}}}


def write(tmp_path, doc, name="space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def with_(**parts):
    return {**BASE, **parts}


def test_a_sweep_loads_with_its_defaults(tmp_path):
    sweep = load_sweep(write(tmp_path, BASE))
    assert sweep.name == "t" and sweep.tune.searcher == "optuna" and sweep.tune.scheduler == "asha"
    assert sweep.tune.seeds == (1, 2) and sweep.tune.metric == "dev/sent_f1" and sweep.max_epochs() == 1


def test_every_distribution_maps_to_its_tune_domain():
    from ray.tune.search.sample import Categorical, Float, Integer

    space = to_tune_space({"learning_rate": {"loguniform": [1e-5, 1e-3]}, "warmup_ratio": {"uniform": [0.0, 0.2]},
                           "zero_n": {"randint": [1, 6]}, "attention_activation": {"choice": ["soft", "sharp"]},
                           "zero_delta": {"grid": [0.0, 0.1]}})
    lr, warm, zero_n, act = space["learning_rate"], space["warmup_ratio"], space["zero_n"], space["attention_activation"]
    assert isinstance(lr, Float) and (lr.lower, lr.upper) == (1e-5, 1e-3) and "LogUniform" in type(lr.sampler).__name__
    assert isinstance(warm, Float) and (warm.lower, warm.upper) == (0.0, 0.2)
    assert isinstance(zero_n, Integer) and (zero_n.lower, zero_n.upper) == (1, 6)
    assert isinstance(act, Categorical) and act.categories == ["soft", "sharp"]
    assert space["zero_delta"] == {"grid_search": [0.0, 0.1]}
    assert to_tune_space({"zero_n": {"choice": [1, 3]}}, grid=True) == {"zero_n": {"grid_search": [1, 3]}}


def test_overrides_fix_config_keys_and_set_tune_and_data(tmp_path):
    sweep = load_sweep(write(tmp_path, BASE), ["learning_rate=3.0e-5", "zero_n=5", "tune.num_samples=7",
                                               "data.limit={train: 8, dev: 8, test: 8}", "name=other"])
    assert sweep.fixed["learning_rate"] == 3e-5 and "learning_rate" not in sweep.search  # fixed now
    assert sweep.fixed["zero_n"] == 5 and sweep.tune.num_samples == 7 and sweep.name == "other"
    assert sweep.data.limit == {"train": 8, "dev": 8, "test": 8}
    for bad in ("learning_rat=1", "tune.num_sample=3", "novalue", "fixed.zero_n=2"):
        with pytest.raises(InputError, match="override"):
            load_sweep(write(tmp_path, BASE), [bad])


def test_overrides_read_scientific_notation_and_reach_nested_keys(tmp_path):
    sweep = load_sweep(write(tmp_path, BASE), ["learning_rate=1e-4", "warmup_ratio=5E-2", "data.limit.train=16",
                                               "tune.resources_per_trial.cpu=2", "name=1e3"])
    assert sweep.fixed["learning_rate"] == 1e-4 and sweep.fixed["warmup_ratio"] == 0.05
    assert sweep.data.limit == {"train": 16, "dev": 32, "test": 32}  # the other splits keep the YAML's
    assert sweep.tune.resources_per_trial == {"cpu": 2} and sweep.name == "1e3"
    with pytest.raises(InputError, match="data.limit.train"):
        load_sweep(write(tmp_path, BASE), ["data.limit.train=0"])
    with pytest.raises(InputError, match="override 'tune..num_samples=2'"):
        load_sweep(write(tmp_path, BASE), ["tune..num_samples=2"])


def test_a_bad_value_is_named_by_the_override_that_brought_it_not_by_the_file(tmp_path):
    path = write(tmp_path, BASE)
    cases = {"learning_rate=abc": "key 'learning_rate' expects float, got 'abc'",
             "tune.num_samples=abc": "tune.num_samples expects int", "data.limit.train=-1": "data.limit.train must be",
             "tune.metric=dev/nope": "tune.metric 'dev/nope'"}
    for item, why in cases.items():
        with pytest.raises(InputError) as err:
            load_sweep(path, ["zero_n=4", item, "warmup_ratio=0.1"])
        assert str(err.value).startswith(f"override '{item}': {why}"), str(err.value)
    broken = write(tmp_path, with_(fixed={"warmup_ratio": "abc"}), "broken.yaml")
    with pytest.raises(InputError) as err:  # the file's own fault stays the file's, overrides or not
        load_sweep(broken, ["zero_n=4"])
    assert str(err.value).startswith(f"{broken}: fixed: key 'warmup_ratio'"), str(err.value)
    assert load_sweep(broken, ["warmup_ratio=0.1"]).fixed["warmup_ratio"] == 0.1  # an override may mend it
    for overrides, blamed in ((["tune.num_samples=0", "learning_rate=abc"], "learning_rate=abc"),  # shown first
                              (["warmup_ratio=0.1", "learning_rate=abc"], "learning_rate=abc")):  # the file mended
        with pytest.raises(InputError, match=f"^override '{blamed}': key 'learning_rate' expects float"):
            load_sweep(broken if "warmup_ratio=0.1" in overrides else path, overrides)


def test_the_resolved_sweep_reloads_to_the_same_sweep(tmp_path):
    sweep = load_sweep(write(tmp_path, BASE), ["zero_n=4"])
    again = load_sweep(write(tmp_path, sweep.resolved(), "resolved.yaml"))
    assert (again.fixed, again.search, again.tune, again.data) == (sweep.fixed, sweep.search, sweep.tune, sweep.data)


def test_a_seed_conf_is_one_fixed_configuration_with_its_seed():
    conf = Path(__file__).resolve().parents[2] / "shared" / "seed_configs" / "train_soft_attention.conf"
    if not conf.is_file():
        pytest.skip("no seed configs beside the checkout")
    sweep = load_sweep(conf)
    assert sweep.search == {} and sweep.tune.seeds == (15,) and sweep.fixed["max_seq_length"] == 128
    assert smoke(sweep).tune.seeds == (15, 16)


def test_token_metrics_need_word_scores_in_every_trial(tmp_path):
    doc = with_(search={"soft_attention": {"choice": [True, False]}})
    assert "dev/tok_map" not in reported_metrics(load_sweep(write(tmp_path, doc)))
    assert "dev/tok_map" in reported_metrics(load_sweep(write(tmp_path, BASE)))
    heads = with_(search={"zero_shot_head": {"choice": ["soft_attention", "max_pool"]}})
    assert {"dev/tok_map", "dev/words_sent_f1", "dev/loss"} <= set(reported_metrics(load_sweep(write(tmp_path, heads))))


def test_the_ceiling_selects_on_token_metrics_whatever_soft_attention_says(tmp_path):
    """Bug (issue 18): a supervised sweep with soft_attention false was refused for tune.metric dev/tok_f1."""
    doc = with_(fixed={"is_seq_class": False, "soft_attention": False, "num_train_epochs": 1},
                tune={"metric": "dev/tok_f1"})
    assert load_sweep(write(tmp_path, doc)).tune.metric == "dev/tok_f1"


def test_a_searched_value_that_conflicts_with_fixed_is_refused_before_ray(tmp_path):
    doc = with_(fixed={"sentence_loss": "ce2"}, search={"zero_shot_head": {"choice": ["soft_attention", "max_pool"]}})
    with pytest.raises(InputError, match="search.zero_shot_head: sentence_loss: ce2 .* use bce or mse"):
        load_sweep(write(tmp_path, doc))


def test_tune_rules_are_checked_by_name(tmp_path):
    assert load_sweep(write(tmp_path, with_(tune={"rules": ["last", "loss"]}))).tune.rules == ("last", "loss")
    with pytest.raises(InputError, match="tune.rules.0 must be one of sent_f1, words_sent_f1, loss, deletion, last"):
        load_sweep(write(tmp_path, with_(tune={"rules": ["best"]})))


def test_smoke_of_a_grid_keeps_one_point():
    sweep = load_sweep(ROOT / "search_spaces" / "zero.yaml")
    small = smoke(sweep)
    assert small.search == {"zero_n": {"grid": [1]}, "zero_delta": {"grid": [0.0]}} and small.tune.searcher == "grid"


# ---- bad input: one line naming file and key and what is allowed, exit 2, nothing started or written ----

def run_bad(tmp_path, capsys, doc, *extra, output=None) -> str:
    import ray

    from sweep.run import main

    space = write(tmp_path, doc, "bad.yaml") if not isinstance(doc, Path) else doc
    out = output or tmp_path / "out"
    code = main([str(space), "--output", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert not ray.is_initialized()
    if output is None:
        assert not out.exists()
    return err


def test_bad_unknown_top_level_key(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, with_(serch={}))
    assert "bad.yaml" in err and "'serch'" in err and "allowed: name, data, fixed, search, tune" in err


def test_bad_unknown_search_key(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, with_(search={"learning_rat": {"uniform": [0.0, 1.0]}}))
    assert "bad.yaml: search.learning_rat: unknown config key" in err and "learning_rate" in err


def test_bad_unknown_distribution(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, with_(search={"learning_rate": {"normal": [0.0, 1.0]}}))
    assert "search.learning_rate" in err and "'normal'" in err
    assert "allowed: uniform, loguniform, choice, randint, grid" in err


@pytest.mark.parametrize("part, expected", [
    ({"fixed": {"model_name": "tiny-random", "num_train_epochs": "three"}}, "'num_train_epochs' expects int"),
    ({"search": {"attention_activation": {"choice": ["soft", "spiky"]}}}, "must be one of soft, sharp, linear"),
    ({"search": {"zero_n": {"uniform": [1, 5]}}}, "search.zero_n: uniform cannot sample a int key; allowed: randint"),
    ({"search": {"learning_rate": {"loguniform": ["fast", 1.0e-3]}}}, "loguniform expects [low, high] finite numbers"),
    ({"tune": {"num_samples": "many"}}, "tune.num_samples expects int, got 'many'"),
], ids=["fixed-type", "choice-value", "uniform-on-int", "yaml-text-number", "tune-type"])
def test_bad_wrong_value_type(tmp_path, capsys, part, expected):
    err = run_bad(tmp_path, capsys, with_(**part))
    assert "bad.yaml" in err and expected in err


def test_bad_low_above_high(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, with_(search={"learning_rate": {"loguniform": [1.0e-3, 1.0e-5]}}))
    assert "bad.yaml: search.learning_rate: low 0.001 must be below high 1e-05" in err


def test_bad_empty_search_and_no_fixed(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, {"name": "t", "search": {}, "fixed": {}})
    assert "bad.yaml: empty search and no fixed config" in err


def test_bad_metric_that_no_trial_reports(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, with_(tune={"metric": "dev/tok_f2"}))
    assert "bad.yaml: tune.metric 'dev/tok_f2' is reported by no trial; allowed:" in err and "dev/tok_map" in err


def test_bad_output_path_is_a_file(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    err = run_bad(tmp_path, capsys, write(tmp_path, BASE), output=target)
    assert str(target) in err and "is a file, expected a folder" in err and target.read_text() == "keep me"


def test_bad_missing_encoder_folder_and_seed_in_fixed(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, with_(fixed={"model_name": "/nonexistent/folder"}))
    assert "fixed.model_name" in err and "tiny-random" in err
    err = run_bad(tmp_path, capsys, with_(fixed={"model_name": "tiny-random", "seed": 3}))
    assert "tune.seeds" in err


def test_resume_without_an_earlier_sweep_and_an_earlier_sweep_without_resume(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, write(tmp_path, BASE), "--resume")
    assert "no sweep to resume" in err
    (tmp_path / "out2" / "t" / "tune").mkdir(parents=True)
    err = run_bad(tmp_path, capsys, write(tmp_path, BASE), output=tmp_path / "out2")
    assert "--resume to continue it or --fresh" in err and (tmp_path / "out2" / "t" / "tune").is_dir()


def test_bad_input_as_a_real_process_exits_2_with_one_line(tmp_path):
    space = write(tmp_path, with_(search={"learning_rate": {"normal": [0.0, 1.0]}}))
    proc = subprocess.run([sys.executable, "-m", "sweep.run", str(space), "--output", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "unknown distribution" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_searched_ceiling_brings_its_epochs_to_the_scheduler(tmp_path):
    doc = with_(fixed={"model_name": "tiny-random"}, search={"is_seq_class": {"choice": [True, False]}})
    assert load_sweep(write(tmp_path, doc)).max_epochs() == 20  # CEILING_DEFAULTS, not the zero-shot 3
