"""sweep.run end to end with real Ray Tune, as the user runs it: `--smoke-test`, and seeds grouped over configs.

run_sweep, write_space (the tiny sweep: tiny-random, 32 wnut16 sentences a split), board and trials are
conftest fixtures, shared with the other test_run_* files.
"""
import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from sweep.space import load_sweep, smoke
from zs_core.config import KEYS


@pytest.fixture(scope="module")
def smoke_run(smoke_sweep):
    return smoke_sweep  # conftest: sweep.run --smoke-test, run once for every module that reads it


@pytest.mark.slow
def test_smoke_prints_dashboard_gpu_notice_and_top_table(smoke_run):
    log, _ = smoke_run
    assert re.search(r"^Ray dashboard: http://127\.0\.0\.1:\d+", log, re.M)
    assert "notice: no GPU in this Ray cluster; trials run on CPU" in log  # demo.yaml asks for a GPU
    assert "Top 10 by dev/sent_f1 (max) of 2 trials (2 TERMINATED):" in log


@pytest.mark.slow
def test_smoke_prints_a_line_per_trial_event_and_no_ray_boilerplate(smoke_run):
    log, out = smoke_run
    lines = [line for line in log.splitlines() if line.strip()]
    trials = [re.fullmatch(r"(\w{5}_\d{5}) started: seed (\d+)", line) for line in lines]
    ids = [m.group(1) for m in trials if m]
    assert len(ids) == 2
    for trial_id in ids:
        assert any(re.fullmatch(rf"{trial_id} epoch 1 \(step \d+(/\d+)?\): loss \d\.\d{{4}}, dev/sent_f1 \d\.\d{{4}} "
                                rf"\(best \d\.\d{{4}}\), \d+s", line) for line in lines), log
        assert any(line.startswith(f"{trial_id} done after 1 evaluations") for line in lines), log
    for noise in ("\x1b", "Checkpoint successfully created", "__trial_index__", "Trial status", "│", "╭",
                  "View detailed results", "tensorboard --logdir /tmp/ray", "Started a local Ray instance",
                  "Token authentication is enabled"):
        assert noise not in log, noise
    assert log.count("127.0.0.1:") == 1  # the dashboard URL once
    assert sorted(p.name.split("_", 4)[-1] for p in (out / "tune").glob("train_trial_*")) == ["0_seed-15", "1_seed-16"]
    assert len(lines) < 40, log


@pytest.mark.slow
def test_smoke_leaderboard_columns_statuses_provenance(smoke_run, board, trials):
    _, out = smoke_run
    frame = board(out)
    wanted = {"trial_id", "status", "seed", "best_epoch", "checkpoint", "seconds", "error", "created_at", "git_sha",
              "version_torch", "version_ray", "dev/sent_f1", "dev/tok_map", "dev/tok_cal_f1", "dev/tok_cal_threshold",
              "test/sent_f1", "test/tok_f1", "test/tok_cal_f1", "node_id"}
    assert wanted | set(KEYS) <= set(frame.columns)
    runs = trials(frame)
    assert sorted(runs["status"]) == ["TERMINATED", "TERMINATED"] and sorted(runs["seed"]) == [15, 16]
    assert runs["trial_id"].is_unique and (runs["model_name"] == "tiny-random").all()
    assert (runs["num_train_epochs"] == 1).all() and (runs["best_epoch"] == 1).all() and runs["error"].isna().all()
    assert str(frame["seed"].dtype) == "Int64" and str(frame["num_train_epochs"].dtype) == "Int64"
    baseline = frame[frame["method"] == "random"]
    assert len(baseline) == 1 and baseline["dev/tok_map"].between(0, 1).all()
    assert re.fullmatch(r"[0-9a-f]{40}|", frame["git_sha"].iloc[0])
    assert pd.Timestamp(frame["created_at"].iloc[0]).year >= 2024 and frame["version_torch"].iloc[0]


@pytest.mark.slow
def test_smoke_a_random_row_matches_its_tune_result(smoke_run, board, trials):
    _, out = smoke_run
    row = trials(board(out)).sample(1, random_state=random.randrange(1000)).iloc[0]
    results = [json.loads(line) for f in (out / "tune").glob(f"*{row['trial_id']}*/result.json")
               for line in f.read_text().splitlines()]
    assert len(results) == 1 and results[0]["dev/sent_f1"] == pytest.approx(row["dev/sent_f1"])
    assert results[0]["dev/tok_map"] == pytest.approx(row["dev/tok_map"])


@pytest.mark.slow
def test_smoke_keeps_the_best_checkpoint_only_and_scores_it_on_test(smoke_run, board, trials):
    _, out = smoke_run
    runs = trials(board(out))  # demo.yaml keeps 1
    kept = runs[runs["checkpoint"].notna()]
    assert len(kept) == 1 and kept["dev/sent_f1"].iloc[0] == runs["dev/sent_f1"].max()
    assert Path(kept["checkpoint"].iloc[0]).is_dir()
    assert len(list((out / "tune").glob("*/checkpoint_*"))) == 1  # the other trial's is deleted
    assert kept[["test/tok_f1", "test/tok_cal_f1", "test/sent_f1"]].notna().all(axis=None)
    assert runs[runs["checkpoint"].isna()]["test/tok_f1"].isna().all()


@pytest.mark.slow
def test_smoke_by_config_and_the_saved_sweep(smoke_run, board, trials, repo_root):
    _, out = smoke_run
    grouped = board(out, by_config=True)
    assert len(grouped) == 1 and grouped["n"].iloc[0] == 2 and grouped["seeds"].iloc[0] == "15,16"
    runs = trials(board(out))
    assert grouped["dev/sent_f1_mean"].iloc[0] == pytest.approx(runs["dev/sent_f1"].mean())
    assert grouped["dev/sent_f1_std"].iloc[0] == pytest.approx(runs["dev/sent_f1"].std())
    saved = load_sweep(out / "sweep.yaml")
    expected = smoke(load_sweep(repo_root / "search_spaces" / "demo.yaml"))
    assert (saved.fixed, saved.tune, saved.data) == (expected.fixed, expected.tune, expected.data)
    assert (out / "curves.parquet").is_file()


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory, write_space, run_sweep):
    """Optuna (TPE) + ASHA: 2 sampled configurations x 2 seeds, 2 epochs."""
    folder = tmp_path_factory.mktemp("seeds")
    space = write_space(folder, "seeds", fixed={"model_name": "tiny-random", "num_train_epochs": 2},
                        search={"learning_rate": {"loguniform": [1.0e-4, 1.0e-2]},
                                "attention_activation": {"choice": ["soft", "linear"]}},
                        tune={"num_samples": 2, "seeds": [1, 2], "resources_per_trial": {"cpu": 1}, "keep_top_k": 2,
                              "loggers": ["tensorboard", "mlflow"]})
    run_sweep(space, "--output", folder / "out")
    return folder / "out" / "seeds"


@pytest.mark.slow
def test_every_sampled_config_runs_once_per_seed_with_identical_values(seeds_run, board, trials):
    runs = trials(board(seeds_run))
    assert len(runs) == 4 and set(runs["status"]) <= {"TERMINATED", "STOPPED_EARLY"}
    assert (runs[runs["status"] == "STOPPED_EARLY"]["epochs_run"] < 2).all()
    groups = runs.groupby(["learning_rate", "attention_activation"])["seed"].apply(sorted)
    assert len(groups) == 2 and all(seeds == [1, 2] for seeds in groups)
    params = [json.loads(f.read_text()) for f in seeds_run.glob("tune/*/params.json")]
    by_index = {(p["learning_rate"], p["attention_activation"]): set() for p in params}
    for p in params:
        by_index[(p["learning_rate"], p["attention_activation"])].add(p["__trial_index__"])
    assert len(params) == 4 and list(by_index.values()) == [{0, 1}, {0, 1}]


@pytest.mark.slow
def test_seeds_are_grouped_in_the_by_config_table(seeds_run, board, trials):
    runs, grouped = trials(board(seeds_run)), board(seeds_run, by_config=True)
    assert len(grouped) == 2 and (grouped["n"] == 2).all() and (grouped["seeds"] == "1,2").all()
    for _, row in grouped.iterrows():
        same = runs[runs["learning_rate"] == row["learning_rate"]]
        assert row["dev/sent_f1_mean"] == pytest.approx(same["dev/sent_f1"].mean())
        assert row["dev/tok_map_std"] == pytest.approx(same["dev/tok_map"].std())


@pytest.mark.slow
def test_tensorboard_and_mlflow_hold_every_dev_evaluation_of_every_trial(seeds_run):
    """tune.loggers: Tune's own TensorBoard and MLflow callbacks, read back by tensorboard's event reader and an
    MLflow client on the sweep's SQLite store; each holds what Tune's result.json holds, evaluation by evaluation."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results = {f.parent: [json.loads(line) for line in f.read_text().splitlines()]
               for f in seeds_run.glob("tune/train_trial_*/result.json")}
    client = MlflowClient(f"sqlite:///{seeds_run / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("seeds").experiment_id])
    assert len(results) == 4 and len(runs) == 4
    for folder, reports in results.items():
        events = EventAccumulator(str(folder))
        events.Reload()
        tensorboard = [(s.step, s.value) for s in events.Scalars("ray/tune/dev/tok_map")]
        assert tensorboard == [(i + 1, pytest.approx(r["dev/tok_map"])) for i, r in enumerate(reports)]
        run, = [r for r in runs if r.data.tags["trial_name"] == f"train_trial_{reports[0]['trial_id']}"]
        history = sorted(client.get_metric_history(run.info.run_id, "dev/sent_f1"), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(i + 1, pytest.approx(r["dev/sent_f1"]))
                                                         for i, r in enumerate(reports)]
        assert run.info.status == "FINISHED" and run.data.params["learning_rate"] == str(reports[0]["config"]["learning_rate"])


@pytest.fixture(scope="module")
def steps_run(tmp_path_factory, write_space, run_sweep):
    """Dev evaluation every 3 optimizer steps: 32 sentences in batches of 8 = 4 steps an epoch, 2 epochs."""
    folder = tmp_path_factory.mktemp("steps")
    space = write_space(folder, "steps", fixed={"model_name": "tiny-random", "num_train_epochs": 2, "eval_steps": 3,
                                                "per_device_train_batch_size": 8, "learning_rate": 3.0e-3},
                        tune={"searcher": "grid", "scheduler": "fifo", "seeds": [1, 2],
                              "resources_per_trial": {"cpu": 1}, "keep_top_k": 2})
    log = run_sweep(space, "--output", folder / "out", "--quiet").stdout
    return folder / "out" / "steps", log


@pytest.mark.slow
def test_step_wise_evaluation_gives_a_curve_row_each_and_names_the_best_step(steps_run, board, trials):
    steps_run, _ = steps_run
    curves = pd.read_parquet(steps_run / "curves.parquet")
    runs = trials(board(steps_run))
    assert len(runs) == 2 and (runs["status"] == "TERMINATED").all() and (runs["epochs_run"] == 2).all()
    for _, row in runs.iterrows():
        curve = curves[curves["trial_id"] == row["trial_id"]].sort_values("step")
        assert curve["step"].tolist() == [3, 6, 8] and curve["epoch"].tolist() == [0.75, 1.5, 2.0]
        best = curve.loc[curve["dev/sent_f1"].idxmax()]
        assert row["best_step"] == best["step"] and row["best_epoch"] == best["epoch"]
        assert row["dev/tok_map"] == pytest.approx(best["dev/tok_map"]) and row["dev/tok_corr"] == best["dev/tok_corr"]
        assert pd.notna(row["test/tok_corr"])
    assert str(board(steps_run)["best_step"].dtype) == "Int64"


@pytest.mark.slow
def test_quiet_prints_the_start_line_and_the_final_table_only(steps_run):
    folder, log = steps_run
    lines = [line for line in log.splitlines() if line.strip()]
    assert re.fullmatch(rf"Ray dashboard: http://127\.0\.0\.1:\d+ \(its token: ray get-auth-token\); output: {folder}",
                        lines[0]), log
    assert lines[1] == "Top 10 by dev/sent_f1 (max) of 2 trials (2 TERMINATED):"
    assert len(lines) == 2 + 1 + 3, log  # the table: its header, 2 trials and the random baseline
