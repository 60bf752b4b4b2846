"""The paper's table from zs-sweep's own runs: FCE, SST positive and SST negative, with minilm.

SST is the paper's task: sentence labels from the data folder's {split}.sentences.tsv (the sentence's own
sentiment), token labels from {split}.tsv.

  python bench/quality.py                                   # the CPU budget: ~3 h on 2 cores, resumable
  python bench/quality.py --preset full --address HEAD:6379  # the same stages at full size on a GPU cluster

Per task, each stage runs zs-sweep's own command lines and is skipped when its output is there, so an
interrupted run resumes where it stopped (an interrupted search resumes with sweep.run --resume):
  search  sweep.run: Optuna over soft_attention_gamma, soft_attention_alpha, learning_rate (one seed,
          ASHA by epoch) on a train subsample; the best configuration by dev sentence F1 (the paper's selection)
  final   sweep.run: that configuration with 3 seeds on more train; every seed is scored on test
FCE, the paper's own task, has no search over loss weights:
  ablation  sweep.run: search_spaces/paper_ablation.yaml's grid (square_attention, zero_delta, attend_sep,
            sentence_loss) on a train subsample, one seed
  final     sweep.run: search_spaces/paper.yaml (the paper's FCE model, dev checked every 500 steps) with the
            grid point of the best dev sentence F1 and the preset's lr, warm-up, epochs and seeds, all train
  heads   sweep.heads on the final's best seed and on the untrained encoder, for dev and for test: the best
          head is chosen by dev MAP and reported on test with its dev-calibrated threshold
  ceiling sweep.run: the supervised ceiling, a token classifier on the gold token labels (is_seq_class
          false, lr 5e-5, no search), kept by dev token F1, every seed scored on test
  predict sweep.predict: LIME on a fixed random sample of dev and test sentences (data --sample), soft
          attention and random on the same sample (random on the whole test set comes from sweep.heads)
  table   OUT/<task>/table.md, OUT/tables.md and OUT/quality.json (sweep.evaluate's numbers)
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml
from quality_table import task_table, write_tables  # bench/ is on sys.path when run as python bench/quality.py

from sweep.leaderboard import FINISHED

ROOT = Path(__file__).resolve().parent.parent
TASKS = {  # data folder below --data-root, positive labels, how a budget of N train/dev sentences is cut
    # SST's files are ordered by sentiment (the first four tenths of each split mostly positive, the last five mostly
    # negative): its first N sentences would be nearly one class, so SST draws a fixed random N (data.sample)
    "fce": ("fce", ["i"], "limit"),
    "sst_pos": ("sst", ["pos", "vpos"], "sample"),
    "sst_neg": ("sst", ["neg", "vneg"], "sample"),
}
PRESETS = {
    # search_train: first N train sentences for the search (None: all), search_dev likewise;
    # final_train: train sentences for the 3-seed final runs; lime_sample: dev and test sentences for LIME
    # paper: FCE's final (search_spaces/paper.yaml) with these overrides (the cpu preset's: lr 3e-5 for minilm,
    # warm-up over 10% of the optimizer steps, since the seed's warm-up outlasts a 3-epoch run); ablation:
    # paper_ablation.yaml's grid on the first `train` sentences
    "cpu": {"model": "minilm", "search_train": 1500, "search_dev": 600, "search_epochs": 2, "num_samples": 4,
            "final_train": {"sst_pos": 4000, "sst_neg": 4000}, "final_epochs": 1,
            "seeds": [1, 2, 3], "lime_sample": 60, "lime_samples": 1024,
            "paper": {"learning_rate": 3.0e-5, "warmup_unit": "steps", "num_train_epochs": 3, "seeds": [9, 1, 2]},
            "ablation": {"train": 4000, "num_train_epochs": 1, "seeds": [9]},
            "ceiling": {"fce": {"train": None, "epochs": 1, "seeds": [9]},  # all train: the final kept epochs 0.6-0.9
                        "sst_pos": {"train": 4000, "epochs": 1, "seeds": [1, 2, 3]},
                        "sst_neg": {"train": 4000, "epochs": 1, "seeds": [1, 2, 3]}}},
    "full": {"model": "minilm", "search_train": None, "search_dev": None, "search_epochs": 3, "num_samples": 16,
             "final_train": {}, "final_epochs": 3, "seeds": [1, 2, 3], "lime_sample": None,
             "lime_samples": 4096,
             "paper": {"learning_rate": 2.0e-5, "warmup_unit": "sentences", "num_train_epochs": 20,
                       "seeds": [3, 5, 9, 15, 20]},
             "ablation": {"train": None, "num_train_epochs": 3, "seeds": [9, 1]},
             "ceiling": {t: {"train": None, "epochs": 3, "seeds": [1, 2, 3]} for t in ("fce", "sst_pos", "sst_neg")}},
    # the whole pipeline in a minute on the tiny random encoder (tests/test_quality.py)
    "smoke": {"model": "tiny-random", "search_train": 64, "search_dev": 32, "search_epochs": 1, "num_samples": 2,
              "final_train": {"fce": 64, "sst_pos": 64, "sst_neg": 64}, "final_epochs": 1, "seeds": [1, 2],
              "lime_sample": 4, "lime_samples": 64,
              "paper": {"learning_rate": 1.0e-3, "warmup_unit": "steps", "num_train_epochs": 1, "seeds": [1, 2]},
              "ablation": {"train": 64, "num_train_epochs": 1, "seeds": [1]},
              "ceiling": {t: {"train": 64, "epochs": 1, "seeds": [1, 2]} for t in ("fce", "sst_pos", "sst_neg")}},
}
CEILING_LR = 5.0e-5  # the supervised ceiling's learning rate (no search: it is the upper bound, not the study)
PAPER_TASKS = ("fce",)  # tasks whose final is the paper's own model (search_spaces/paper.yaml)
SPACES = ROOT / "search_spaces"
SEARCH = {
    "soft_attention_gamma": {"loguniform": [0.01, 1.0]},
    "soft_attention_alpha": {"choice": [0.0, 0.01, 0.1]},
    "learning_rate": {"loguniform": [2.0e-5, 1.0e-4]},
}
FIXED = {"soft_attention": True, "per_device_train_batch_size": 16, "max_seq_length": 128}
METRIC = "dev/sent_f1"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python bench/quality.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--preset", default="cpu", choices=PRESETS)
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"), help="holds fce/ and sst/")
    p.add_argument("--output", default="runs/quality", help="output folder (default runs/quality)")
    p.add_argument("--address", default=None, help="a running Ray cluster for sweep.run and sweep.heads")
    p.add_argument("--storage", default=None, help="Tune's result trees (a shared folder or URI: several nodes)")
    return p.parse_args(argv)


class Runner:
    """Runs zs-sweep's command lines, logs them with their wall time, stops the run on the first failure."""

    def __init__(self, out: Path, address: str | None, storage: str | None):
        self.address, self.storage = address, storage
        self.log = out / "commands.log"

    def __call__(self, *argv: str, ray: bool = False) -> None:
        cmd = [sys.executable, "-m", *argv, *(["--address", self.address] if ray and self.address else [])]
        shown = shlex.join(["python", "-m", *cmd[2:]])
        print(f"\n$ {shown}", flush=True)
        start = time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.monotonic() - start
        with self.log.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{seconds:.1f}s\trc={done.returncode}\t{shown}\n")
        if done.returncode != 0:
            sys.exit(f"quality: failed (exit {done.returncode}): {shown}")


def data_args(folder: Path, positive: list[str]) -> list[str]:
    return ["--data-dir", str(folder), "--positive-labels", *positive]


def write_space(path: Path, name: str, data: dict, fixed: dict, search: dict, tune: dict) -> Path:
    """A sweep YAML whose first line is its command (like search_spaces/*.yaml)."""
    body = {"name": name, "data": data, "fixed": fixed, "search": search, "tune": tune}
    path.write_text(f"# python -m sweep.run {path} --output {path.parent}\n"
                    + yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def sweep_stage(run: Runner, space: Path, folder: Path) -> None:
    """sweep.run, skipped when its leaderboard is there, resumed when it has started (sweep.yaml written)."""
    if (folder / "leaderboard.parquet").is_file():
        return
    started = (folder / "tune").is_dir() or (run.storage and (folder / "sweep.yaml").is_file())
    again = "--resume" if started else "--fresh"
    run("sweep.run", str(space), "--output", str(space.parent), again, ray=True)


def best_row(folder: Path) -> dict:
    import pandas as pd

    board = pd.read_parquet(folder / "leaderboard.parquet")
    trials = board[(board["method"] != "random") & board["status"].isin(FINISHED)]
    if trials.empty:
        sys.exit(f"quality: {folder}: no finished trial")
    return trials.sort_values(METRIC, ascending=False).iloc[0].to_dict()


def run_task(task: str, preset: dict, data_root: Path, out: Path, run: Runner) -> None:
    sub, positive, _ = TASKS[task]
    folder, home = data_root / sub, out / task
    home.mkdir(parents=True, exist_ok=True)
    data = {"dir": str(folder), "positive_labels": positive}
    fixed = {**FIXED, "model_name": preset["model"]}
    tune = {"metric": METRIC, "mode": "max", "resources_per_trial": {"gpu": 1},
            **({"storage_path": f"{run.storage}/{task}"} if run.storage else {})}
    final_data = {**data, **cut(task, train=preset["final_train"].get(task))}
    if task in PAPER_TASKS:
        paper_stages(run, home, final_data, {**data, **cut(task, train=preset["ablation"]["train"])}, preset, tune)
    else:
        search = write_space(home / "search.yaml", "search",
                             {**data, **cut(task, train=preset["search_train"], dev=preset["search_dev"])},
                             {**fixed, "num_train_epochs": preset["search_epochs"]}, SEARCH,
                             {**tune, "num_samples": preset["num_samples"], "searcher": "optuna",
                              "scheduler": "asha", "grace_period": 1, "seeds": preset["seeds"][:1], "keep_top_k": 1})
        sweep_stage(run, search, home / "search")
        chosen = {k: best_row(home / "search")[k] for k in SEARCH}
        final = write_space(home / "final.yaml", "final", final_data,
                            {**fixed, "num_train_epochs": preset["final_epochs"], **chosen}, {},
                            {**tune, "searcher": "grid", "scheduler": "fifo", "seeds": preset["seeds"],
                             "keep_top_k": len(preset["seeds"])})
        sweep_stage(run, final, home / "final")
    checkpoint = str(best_row(home / "final")["checkpoint"])
    for split in ("dev", "test"):
        heads = home / f"heads_{split}"
        if not (heads / "heads.parquet").is_file():
            storage = ["--storage", f"{run.storage}/{task}/heads_{split}"] if run.storage else []
            run("sweep.heads", "--model", checkpoint, preset["model"], *data_args(folder, positive), "--split", split,
                "--output", str(heads), *storage, ray=True)
    predictions(run, home, folder, positive, checkpoint, preset)
    budget = preset["ceiling"][task]
    ceiling_stage(run, home, {**data, **cut(task, train=budget["train"])}, budget,
                  {**fixed, "learning_rate": CEILING_LR}, tune)
    (home / "table.md").write_text(task_table(task, home, preset), encoding="utf-8")


def cut(task: str, **counts: int | None) -> dict:
    """The data block's budget: {"limit": ...} (the first N sentences) or {"sample": ...} (a fixed random N),
    as the task's data needs (TASKS); {} when every count is None (all sentences)."""
    counts = {split: n for split, n in counts.items() if n}
    return {TASKS[task][2]: counts} if counts else {}


def paper_stages(run: Runner, home: Path, data: dict, ablation_data: dict, preset: dict, tune: dict) -> None:
    """The ablation grid (search_spaces/paper_ablation.yaml) on a small budget, then the final: the paper's
    FCE model (search_spaces/paper.yaml) with the grid point that had the best dev sentence F1 (zero-shot:
    no token label chooses) and the preset's encoder, learning rate, warm-up, epochs and seeds."""
    paper, ablation = preset["paper"], preset["ablation"]
    grid = yaml.safe_load((SPACES / "paper_ablation.yaml").read_text(encoding="utf-8"))
    adapted = {"model_name": preset["model"], "learning_rate": paper["learning_rate"],
               "warmup_unit": paper["warmup_unit"]}
    path = write_space(home / "ablation.yaml", "ablation", ablation_data,
                       {**grid["fixed"], **adapted, "num_train_epochs": ablation["num_train_epochs"]}, grid["search"],
                       {**grid["tune"], **tune, "seeds": ablation["seeds"], "keep_top_k": 1})
    sweep_stage(run, path, home / "ablation")
    chosen = {k: best_row(home / "ablation")[k] for k in grid["search"]}
    space = yaml.safe_load((SPACES / "paper.yaml").read_text(encoding="utf-8"))
    path = write_space(home / "final.yaml", "final", data,
                       {**space["fixed"], **adapted, **chosen, "num_train_epochs": paper["num_train_epochs"]}, {},
                       {**space["tune"], **tune, "seeds": paper["seeds"], "keep_top_k": len(paper["seeds"])})
    sweep_stage(run, path, home / "final")


def ceiling_stage(run: Runner, home: Path, data: dict, budget: dict, fixed: dict, tune: dict) -> None:
    """The supervised ceiling: the same encoder as a token classifier trained on the gold token labels of
    train (is_seq_class false), each seed's model kept by dev token F1 at 0.5, scored on test."""
    fixed = {k: v for k, v in fixed.items() if k != "soft_attention"}
    path = write_space(home / "ceiling.yaml", "ceiling", data,
                       {**fixed, "is_seq_class": False, "num_train_epochs": budget["epochs"]}, {},
                       {**tune, "metric": "dev/tok_f1", "searcher": "grid", "scheduler": "fifo",
                        "seeds": budget["seeds"], "keep_top_k": len(budget["seeds"])})
    sweep_stage(run, path, home / "ceiling")


def predictions(run: Runner, home: Path, folder: Path, positive: list[str], checkpoint: str,
                preset: dict) -> None:
    """Word scores (sweep.predict) and their metrics (sweep.evaluate, calibrated on dev) under home/preds."""
    sample = ["--sample", str(preset["lime_sample"])] if preset["lime_sample"] else []
    jobs = [("lime", ["--model", checkpoint, "--method", "lime", "--lime-samples", str(preset["lime_samples"]),
                      "--no-progress"], sample),
            ("soft_attention_sample", ["--model", checkpoint, "--method", "soft_attention"], sample),
            ("random_sample", ["--method", "random"], sample)]
    for name, method, subset in jobs:
        where = home / "preds" / name
        if (where / "metrics.json").is_file():
            continue
        where.mkdir(parents=True, exist_ok=True)
        gold = [*data_args(folder, positive), *subset]
        for split in ("dev", "test"):
            if not (where / f"{split}.parquet").is_file():  # the TSV and its Parquet are written together
                run("sweep.predict", *method, *gold, "--split", split, "--output", str(where / f"{split}.tsv"))
        run("sweep.evaluate", "--preds", str(where / "test.tsv"), *gold, "--split", "test",
            "--calibrate-on", str(where / "dev.tsv"), "--json-out", str(where / "metrics.json"))


def main(argv=None) -> int:
    args = parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        print(f"--tasks: unknown task {(bad or [''])[0]!r}; expected any of {', '.join(TASKS)}", file=sys.stderr)
        return 2
    data_root = Path(args.data_root).resolve()
    for task in tasks:
        folder = data_root / TASKS[task][0]
        if not all((folder / f"{s}.tsv").is_file() for s in ("train", "dev", "test")):
            print(f"{folder}: expected train.tsv, dev.tsv and test.tsv (--data-root)", file=sys.stderr)
            return 2
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    preset = PRESETS[args.preset]
    run = Runner(out, args.address, args.storage)
    start = time.monotonic()
    for task in tasks:
        run_task(task, preset, data_root, out, run)
        write_tables(out, tasks, preset)
    print(f"\nquality: {len(tasks)} tasks in {time.monotonic() - start:.0f} s (this invocation); "
          f"tables in {out / 'tables.md'}")
    print((out / "tables.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
