"""Hostile input, one test per class of fault (issue 20): every command answers with one line, exit code 2, no
traceback and nothing written; a property test feeds the readers malformed files made from valid ones."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zs_core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
GOOD_TSV = "The\tc\ncat\ti\nsat\tc\n\nA\tc\ndog\tc\n\n-DOCSTART-\tO\n\nhi\ti\n"


def command(module: str, *args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` run here, in this process (every case fails before Ray would start), its exit
    code and stderr as a CompletedProcess."""
    import contextlib
    import importlib
    import io

    err, here = io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = importlib.import_module(module).main([str(a) for a in args])
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess([module, *args], code, "", err.getvalue())


def one_line(proc: subprocess.CompletedProcess, *parts: str) -> str:
    """The command failed as bad input should: exit 2, one line on stderr holding ``parts``, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


@pytest.fixture(scope="module")
def no_tokenizer(tmp_path_factory) -> Path:
    """A Hugging Face encoder folder with config and weights but no tokenizer files (transformers would make a
    5-piece tokenizer of it: every word [UNK])."""
    from zs_core.encoders import tiny_random_encoder

    folder = tmp_path_factory.mktemp("no-tokenizer")
    tiny_random_encoder("sdpa").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from zs_core.checkpoint import save_checkpoint
    from zs_core.config import build_config
    from zs_core.encoders import load_tokenizer
    from zs_core.model import build_model

    cfg = build_config({"model_name": "tiny-random", "attention_evidence_size": 8, "final_hidden_layer_size": 8}, "t")
    folder = tmp_path_factory.mktemp("ckpt") / "checkpoint"
    return save_checkpoint(folder, build_model(cfg.model, 1), load_tokenizer("tiny-random"), cfg)


def broken_copy(checkpoint: Path, tmp_path: Path, how: str) -> Path:
    folder = tmp_path / how
    shutil.copytree(checkpoint, folder)
    if how == "truncated_head":
        path = folder / "head.safetensors"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "truncated_encoder":
        path = folder / "encoder" / "model.safetensors"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "broken_config":
        (folder / "zs_config.json").write_text('{"config": [1, 2')
    elif how == "other_architecture":
        meta = json.loads((folder / "zs_config.json").read_text())
        meta["config"]["attention_evidence_size"] = 7
        (folder / "zs_config.json").write_text(json.dumps(meta))
    elif how == "no_tokenizer":
        for path in (folder / "encoder").iterdir():
            if "token" in path.name or "vocab" in path.name:
                path.unlink()
    return folder


# --- garbage from a broken model folder, and tracebacks on broken checkpoints -------------------------------

@pytest.mark.parametrize("how", ["truncated_head", "truncated_encoder", "broken_config", "other_architecture",
                                 "no_tokenizer"])
def test_a_broken_checkpoint_is_one_line_in_predict(checkpoint, tmp_path, how):
    broken = broken_copy(checkpoint, tmp_path, how)
    out = tmp_path / "out" / "preds.tsv"
    one_line(command("sweep.predict", "--model", broken, "--method", "soft_attention", "--limit", "4", "--output",
                     out), str(broken))
    assert not (tmp_path / "out").exists()


def test_a_model_folder_without_a_tokenizer_is_refused_before_anything_runs(no_tokenizer, tmp_path):
    err = one_line(command("sweep.run", "search_spaces/demo.yaml", f"model_name={no_tokenizer}", "--output",
                           tmp_path / "run"), "holds no tokenizer")
    assert "demo.yaml: fixed.model_name" in err and not (tmp_path / "run").exists()
    one_line(command("sweep.heads", "--model", no_tokenizer, "--limit", "32", "--output", tmp_path / "heads"),
             "holds no tokenizer")
    one_line(command("sweep.predict", "--model", no_tokenizer, "--method", "head", "--layer", "0", "--head", "0",
                     "--limit", "4", "--output", tmp_path / "p.tsv"), "holds no tokenizer")
    assert not (tmp_path / "heads").exists() and not (tmp_path / "p.tsv").exists()


# --- configuration that every trial would fail on: refused before Ray starts ---------------------------------

@pytest.mark.parametrize("override, expected", [
    ("freeze_bert_layers_up_to=9", "freeze_bert_layers_up_to 9: minilm has 6 layers; expected at most 6"),
    ("max_seq_length=600", "max_seq_length 600: minilm has 512 positions"),
    ("tune.seeds=[4294967296]", "tune.seeds.0 must be below 4294967296"),
    ("soft_attention_gamma=.nan", "soft_attention_gamma"),
    ("name=" + "x" * 300, "at most 100 characters"),
])
def test_configuration_that_every_trial_would_fail_on(tmp_path, override, expected):
    one_line(command("sweep.run", "search_spaces/demo.yaml", override, "--output", tmp_path / "run"), expected)
    assert not __import__("ray").is_initialized()
    assert not (tmp_path / "run").exists()


def test_a_missing_token_input_file_is_named_before_ray(tmp_path):
    err = one_line(command("sweep.run", "search_spaces/demo.yaml", "--smoke-test", "soft_attention_beta=1.0",
                           f"token_input_dir={tmp_path}", "token_input_filename=none_{mode}.tsv", "--output",
                           tmp_path / "run"), "none_train.tsv: file not found")
    assert "Ray dashboard" not in err and not (tmp_path / "run" / "demo-smoke" / "tune").exists()


def test_no_cpus_would_hang_and_is_refused(tmp_path):
    one_line(command("sweep.run", "--smoke-test", "--num-cpus", "0", "--output", tmp_path), "--num-cpus 0")


def test_resume_without_saved_state_changes_nothing(tmp_path):
    (tmp_path / "demo-smoke" / "tune").mkdir(parents=True)
    (tmp_path / "demo-smoke" / "sweep.yaml").write_text("# the earlier sweep\n")
    one_line(command("sweep.run", "--smoke-test", "--output", tmp_path, "--resume"), "holds no saved Tune state")
    assert (tmp_path / "demo-smoke" / "sweep.yaml").read_text() == "# the earlier sweep\n"


# --- input accepted silently before ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("name: a\nname: b\nfixed: {num_train_epochs: 1}\n", ":2: not valid YAML (key 'name' given twice)"),
    ('name: "a\\0b"\nfixed: {num_train_epochs: 1}\n', "name must be a plain folder name"),
    ("fixed: {num_train_epochs: 1_0}\n", "key 'num_train_epochs' expects int, got '1_0'"),
    ("fixed: {learning_rate: .inf}\n", "learning_rate"),
    ("search: {learning_rate: {loguniform: [.nan, 1.0]}}\n", "expects [low, high] finite numbers"),
])
def test_yaml_a_typo_would_pass_silently_in(tmp_path, text, expected):
    space = tmp_path / "bad.yaml"
    space.write_text(text)
    one_line(command("sweep.run", space, "--output", tmp_path / "out"), "bad.yaml", expected)


def test_an_alias_bomb_is_one_short_line(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    space = tmp_path / "bomb.yaml"
    space.write_text("\n".join(lines) + "\n")
    err = one_line(command("sweep.run", space, "--output", tmp_path / "out"), "expands to more than")
    assert len(err) < 300


# --- writes where they do not belong ----------------------------------------------------------------------------

def test_outputs_below_a_file_are_refused_before_the_work(tmp_path):
    (tmp_path / "file").write_text("x")
    below = tmp_path / "file" / "sub"
    one_line(command("sweep.predict", "--method", "random", "--limit", "4", "--output", below / "p.tsv"),
             "is a file, so nothing can be written below it")
    one_line(command("sweep.evaluate", "--preds", tmp_path / "p.tsv", "--data", "wnut16", "--json-out",
                     below / "m.json"), "--json-out")
    one_line(command("sweep.run", "--smoke-test", "--output", below), "is a file")


def test_a_conf_placeholder_may_not_lead_out_of_its_folder(tmp_path):
    conf = tmp_path / "pred.conf"
    conf.write_text("[config]\nmethod = random\nexperiment_name = ../../../../escaped\ndataset = wnut16\n"
                    "output_file = out/{experiment_name}/preds.tsv\n")
    one_line(command("sweep.predict", "--config", conf, cwd=tmp_path), "{experiment_name}", "may not lead out")
    assert not list(tmp_path.parents[2].glob("escaped*"))


# --- the property test: malformed files made from valid ones ----------------------------------------------------

def _mutations():
    """(kind, position, byte): cut the file at a position, flip a byte there, or re-encode it."""
    return st.tuples(st.sampled_from(["cut", "flip", "utf16", "latin1", "insert"]), st.integers(0, 200),
                     st.integers(0, 255))


def _mutate(good: bytes, kind: str, at: int, byte: int) -> bytes:
    at = at % (len(good) + 1)
    if kind == "cut":
        return good[:at]
    if kind == "flip":
        return good[:at] + bytes([byte]) + good[at + 1:]
    if kind == "insert":
        return good[:at] + bytes([byte]) + good[at:]
    return good.decode("utf-8").encode(kind.replace("utf16", "utf-16").replace("latin1", "latin-1"), "replace")


def _answers(read, path: Path) -> None:
    """``read(path)`` either reads the file or raises one InputError of one line naming it."""
    try:
        read(path)
    except InputError as err:
        assert "\n" not in str(err) and str(path) in str(err), str(err)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_every_reader_answers_malformed_input_with_one_line(tmp_path, mutation):
    from sweep.seed_conf import read_seed_conf
    from sweep.yamlfile import read_yaml
    from zs_core.data import read_tsv
    from zs_core.predictions import read_predictions

    kind, at, byte = mutation
    yaml_good = yaml.safe_dump({"name": "t", "fixed": {"learning_rate": 3.0e-5, "num_train_epochs": 2},
                                "search": {"zero_n": {"choice": [1, 2]}}}).encode()
    conf_good = b"[config]\nmodel_name = minilm\nlearning_rate = 2e-5\nsoft_attention = True\n"
    preds_good = b"The\t0.5\ncat\t0.9\n\nA\t0.1\n"
    cases = [(GOOD_TSV.encode(), lambda p: read_tsv(p, ("i",))), (GOOD_TSV.encode(), lambda p: read_tsv(p)),
             (preds_good, read_predictions), (yaml_good, read_yaml), (conf_good, read_seed_conf)]
    for i, (good, read) in enumerate(cases):
        path = tmp_path / f"case{i}.txt"
        path.write_bytes(_mutate(good, kind, at, byte))
        _answers(read, path)


def test_yaml_merge_keys_read_as_safe_load_reads_them_and_a_list_as_a_key_is_one_line(tmp_path):
    from sweep.yamlfile import load_yaml

    assert load_yaml("base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  y: 3\n", "m.yaml")["mine"] == {"x": 1, "y": 3}
    with pytest.raises(InputError, match=r"^k\.yaml:1: not valid YAML \(a key must be text or a number"):
        load_yaml("? [a, b]\n: 1\n", "k.yaml")
