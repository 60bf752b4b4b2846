"""Faults: a trial that raises (retried once, then ERROR), a NaN loss (NAN), and kill -9 of the driver + --resume."""
import os
from pathlib import Path

import pandas as pd
import pytest

from sweep.results import last_run, status
from zs_core.errors import error_line

# run_sweep, write_space, board, trials, trial_states and repo_root are conftest fixtures


def test_last_run_keeps_the_epochs_after_a_restart():
    curve = pd.DataFrame({"epoch": [1, 2, 1, 2, 3], "dev/sent_f1": [0.1, 0.2, 0.3, 0.4, 0.5]})
    assert last_run(curve)["dev/sent_f1"].tolist() == [0.3, 0.4, 0.5]
    # resumed from the evaluation before the last one logged: the repeated report replaces the first
    again = pd.DataFrame({"epoch": [0.5, 1.0, 1.5, 1.0, 1.5, 2.0], "dev/sent_f1": [0.1, 0.2, 0.3, 0.2, 0.3, 0.6]})
    assert last_run(again)["epoch"].tolist() == [0.5, 1.0, 1.5, 2.0]
    with_nan = pd.DataFrame({"epoch": [1.0, None], "nan_loss": [0, 1]})
    assert len(last_run(with_nan)) == 2 and last_run(None).empty


def test_status_and_error_line():
    class Result:
        error = None

    assert status(Result(), pd.DataFrame({"epoch": [1, 2]}), 2) == "TERMINATED"
    assert status(Result(), pd.DataFrame({"epoch": [1]}), 2) == "STOPPED_EARLY"
    assert status(Result(), pd.DataFrame({"epoch": [1.0, None], "nan_loss": [0, 1]}), 2) == "NAN"
    Result.error = RuntimeError("wrapped")
    assert status(Result(), pd.DataFrame(), 2) == "ERROR"
    try:
        try:
            raise FileNotFoundError("no such folder\n  /x")
        except FileNotFoundError as inner:
            raise RuntimeError("Traceback ...") from inner
    except RuntimeError as outer:
        assert error_line(outer, with_type=True) == "FileNotFoundError: no such folder"
    remote = RuntimeError("Traceback (most recent call last):\n  File x\nValueError: the real reason")
    assert error_line(remote) == "ValueError: the real reason" and error_line(ValueError()) == "ValueError"


# Every process of the sweep (the driver, Ray's workers) starts with this sitecustomize: once zs_core.model is
# imported, building a model with attention_evidence_size 13 raises, inside the trial: a fault no check before
# Ray can see (a lost file system, a driver bug), made on purpose
FAULT = """
import importlib.abc, importlib.util, sys

class Faulty(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "zs_core.model":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            build = module.build_model

            def build_model(cfg, seed, attentions=False):
                if cfg.attention_evidence_size == 13:
                    raise RuntimeError("injected fault: the trial's file system went away")
                return build(cfg, seed, attentions)

            module.build_model = build_model

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Faulty())
"""


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory, write_space, run_sweep):
    """A grid: {a trial that raises, one that does not} x {a sane, a huge learning rate}, sharp attention."""
    folder = tmp_path_factory.mktemp("faults")
    (folder / "hook").mkdir()
    (folder / "hook" / "sitecustomize.py").write_text(FAULT)
    space = write_space(folder, "faults", fixed={"num_train_epochs": 1, "attention_activation": "sharp"},
                        search={"attention_evidence_size": {"choice": [16, 13]},
                                "learning_rate": {"choice": [1.0e-3, 1.0e+4]}},
                        tune={"searcher": "grid", "seeds": [1], "resources_per_trial": {"cpu": 1}, "keep_top_k": 2})
    path = os.pathsep.join([str(folder / "hook"), os.environ.get("PYTHONPATH", "")])
    run_sweep(space, "--output", folder / "out", env={"PYTHONPATH": path})
    return folder / "out" / "faults"


@pytest.mark.slow
def test_a_trial_that_raises_is_retried_once_then_error_while_others_finish(fault_run, board, trials,
                                                                            trial_states):
    runs, out = trials(board(fault_run)), fault_run
    assert len(runs) == 4
    errors = runs[runs["status"] == "ERROR"]
    assert sorted(errors["attention_evidence_size"]) == [13, 13]
    assert (errors["error"] == "RuntimeError: injected fault: the trial's file system went away").all()
    assert errors["checkpoint"].isna().all()
    states = trial_states(out / "tune")
    assert all(states[t]["num_failures"] == 2 for t in errors["trial_id"])  # the first run and one retry
    ok = runs[runs["status"] == "TERMINATED"]
    assert len(ok) == 1 and ok["learning_rate"].iloc[0] == 1e-3 and ok["error"].isna().all()
    assert states[ok["trial_id"].iloc[0]]["num_failures"] == 0
    assert Path(ok["checkpoint"].iloc[0]).is_dir() and ok["test/tok_cal_f1"].notna().all()


@pytest.mark.slow
def test_a_nan_loss_stops_the_trial_as_nan(fault_run, board, trials, trial_states):
    runs, out = trials(board(fault_run)), fault_run
    nan = runs[runs["status"] == "NAN"]
    assert len(nan) == 1 and nan["learning_rate"].iloc[0] == 1e4 and nan["attention_evidence_size"].iloc[0] == 16
    # the training loss stays finite a while longer than the dev scores: a diverged model is a NaN too
    assert nan["error"].iloc[0] == "the model's scores are NaN or infinite (its weights diverged)"
    assert nan["checkpoint"].isna().all()
    assert trial_states(out / "tune")[nan["trial_id"].iloc[0]]["num_failures"] == 0  # stopped, not retried
    grouped = board(out, by_config=True)  # only finished trials are averaged
    assert len(grouped) == 1 and grouped["learning_rate"].iloc[0] == 1e-3


@pytest.mark.slow
def test_kill_9_of_the_driver_then_resume_runs_every_trial_once(tmp_path, write_space, run_sweep, board, trials,
                                                               kill_after_a_trial):
    """With an Optuna search (its state resumed too); Ctrl-C between trials: test_run_repeat.py."""
    space = write_space(tmp_path, "resume", data={"dataset": "wnut16", "limit": {"train": 120, "dev": 32, "test": 32}},
                        search={"learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}},
                        tune={"num_samples": 2, "seeds": [1, 2], "max_concurrent": 2,
                              "resources_per_trial": {"cpu": 1}, "keep_top_k": 4})
    out, tune_dir = tmp_path / "out", tmp_path / "out" / "resume" / "tune"
    before = kill_after_a_trial(space, out, tune_dir, poll=0.2)
    finished = {t for t, s in before.items() if s["status"] == "TERMINATED"}
    assert 0 < len(finished) < 4 and not (out / "resume" / "leaderboard.parquet").exists()
    sizes = {t: next(tune_dir.glob(f"*{t}*/result.json")).stat().st_size for t in finished}

    run_sweep(space, "--output", out, "--resume")
    runs = trials(board(out / "resume"))
    assert len(runs) == 4 and runs["trial_id"].is_unique and (runs["status"] == "TERMINATED").all()
    assert set(before) <= set(runs["trial_id"]) and sorted(runs["seed"]) == [1, 1, 2, 2]
    assert runs.groupby("learning_rate")["seed"].apply(sorted).tolist() == [[1, 2], [1, 2]]
    for trial, size in sizes.items():  # a finished trial is not run again
        assert next(tune_dir.glob(f"*{trial}*/result.json")).stat().st_size == size
    assert len(list(tune_dir.glob("*/result.json"))) == 4


@pytest.mark.slow
def test_a_sweep_in_which_every_trial_failed_exits_1_naming_the_first_error(tmp_path, write_space, run_sweep,
                                                                          board, trials):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(FAULT)
    space = write_space(tmp_path, "allfail", fixed={"num_train_epochs": 1, "attention_evidence_size": 13},
                        tune={"searcher": "grid", "seeds": [1], "resources_per_trial": {"cpu": 1}})
    path = os.pathsep.join([str(tmp_path / "hook"), os.environ.get("PYTHONPATH", "")])
    proc = run_sweep(space, "--output", tmp_path / "out", env={"PYTHONPATH": path}, expect=1)
    assert proc.stdout.strip().splitlines()[-1] == \
        "error: every trial failed; the first: RuntimeError: injected fault: the trial's file system went away"
    assert trials(board(tmp_path / "out" / "allfail"))["status"].tolist() == ["ERROR"]  # written all the same
