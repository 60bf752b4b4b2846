"""The paper's tasks from zs-sweep's own runs: FCE, SST positive and SST negative, with minilm: both zero-shot
heads, every selection rule beside the oracle, the encoder's heads, LIME and the supervised ceiling.

SST is the paper's task: sentence labels from the data folder's {split}.sentences.tsv (the sentence's own
sentiment), token labels from {split}.tsv.

  python bench/quality.py                                   # the CPU budget: hours on 2 cores, resumable
  python bench/quality.py --preset full --address HEAD:6379  # the same stages at full size on a GPU cluster

Per task, each stage runs zs-sweep's own command lines and is skipped when its output is there, so an
interrupted run resumes where it stopped (an interrupted sweep resumes with sweep.run --resume):
  compare  sweep.run: both zero-shot heads (soft_attention, max_pool) x initializers (xavier, glorot) x seeds
           on a cheap budget, dev every eval_steps; every rule's pick is scored on test (rules.parquet)
  final    sweep.run of both heads, each with the initializer the headline rule rates best on dev in compare
           (zero-shot: the mean over seeds of dev words_sent_f1 at that rule's pick), every seed on the full budget;
           one sweep when both heads chose the same initializer (its trials keep both cores busy), else final_HEAD;
           then the preset's variants of a head (final_NAME: a log-sum-exp max pool), reported beside it
  heads    sweep.heads on the best final checkpoint (the head and trial the headline rule rates best on dev)
           and on the untrained encoder, for dev and for test: the best head by dev MAP, reported on test
  ceiling  sweep.run: the supervised ceiling with its defaults (is_seq_class false: positives weighted,
           trained until dev token F1 stops improving, at most 20 epochs), every seed scored on test
  predict  sweep.predict: LIME on a fixed random sample of dev and test sentences (data --sample), the head's
           own scores and random on the same sample
  table    OUT/<task>/table.md and curves.png (the cpu preset's also as bench/quality_<task>_curves.png),
           OUT/tables.md and OUT/quality.json
The headline rule (HEADLINE) was fixed before any of these runs: no token label picks a checkpoint or a
configuration behind a headline number; the oracle rules (oracle_*) are reported beside it, labelled.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from quality_presets import CEILING_LR, FIXED, HEADLINE, HEADS, PRESETS, TASKS
from quality_table import chosen_initializer, final_tables, task_table, write_tables  # bench/ is on sys.path

from zs_core.protocol import TOK_F1, on_dev

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog="python bench/quality.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--preset", default="cpu", choices=PRESETS)
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"), help="holds fce/ and sst/")
    p.add_argument("--output", default="runs/quality", help="output folder (default runs/quality)")
    p.add_argument("--address", default=None, help="a running Ray cluster for sweep.run and sweep.heads")
    p.add_argument("--storage", default=None, help="Tune's result trees (a shared folder or URI: several nodes)")
    p.add_argument("--num-cpus", type=int, default=None,
                   help="sweep.run's local Ray CPUs (default: all); e.g. 3 on 2 cores runs a task's three seeds at "
                        "once, so no core idles while the last trial runs alone")
    p.add_argument("--until", default=None, choices=("compare", "final", "heads", "ceiling", "predict"),
                   help="stop after this stage of every task (default: run them all)")
    return p.parse_args(argv)


class Runner:
    """Runs zs-sweep's command lines, logs them with their wall time, stops the run on the first failure."""

    def __init__(self, out: Path, address: str | None, storage: str | None, num_cpus: int | None = None):
        self.address, self.storage, self.num_cpus = address, storage, num_cpus
        self.log = out / "commands.log"

    def __call__(self, *argv: str, ray: bool = False) -> None:
        local = ["--num-cpus", str(self.num_cpus)] if self.num_cpus and argv[0] == "sweep.run" else []
        cmd = [sys.executable, "-m", *argv, *((["--address", self.address] if self.address else local) if ray else [])]
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


def cut(task: str, **counts: int | None) -> dict:
    """The data block's budget: {"limit": ...} (the first N sentences) or {"sample": ...} (a fixed random N),
    as the task's data needs (TASKS); {} when every count is None (all sentences)."""
    counts = {split: n for split, n in counts.items() if n}
    return {TASKS[task][2]: counts} if counts else {}


def zero_shot_stages(run: Runner, task: str, home: Path, data: dict, preset: dict, tune: dict,
                     until: str | None) -> list[Path]:
    """compare, then (unless ``until`` compare) one final per head; returns the finals' folders."""
    compare, final = preset["compare"], preset["final"]
    fixed = {**FIXED, "model_name": preset["model"], "learning_rate": preset["learning_rate"]}
    path = write_space(home / "compare.yaml", "compare", {**data, **cut(task, train=compare["train"].get(task))},
                       {**fixed, "num_train_epochs": compare["epochs"], "eval_steps": compare["eval_steps"][task]},
                       {"zero_shot_head": {"grid": list(HEADS)}, "initializer_name": {"grid": compare["initializers"]}},
                       {**tune, "keep_top_k": 0})
    sweep_stage(run, path, home / "compare")
    if until == "compare":
        return []
    inits: dict[str, list[str]] = {}
    for head in HEADS:
        inits.setdefault(chosen_initializer(home / "compare", head, HEADLINE), []).append(head)
    finals = []
    for init, heads in inits.items():
        name = "final" if len(inits) == 1 else f"final_{heads[0]}"
        path = write_space(home / f"{name}.yaml", name, {**data, **cut(task, train=final["train"].get(task))},
                           {**fixed, "initializer_name": init, "num_train_epochs": final["epochs"][task],
                            "eval_steps": final["eval_steps"][task]}, {"zero_shot_head": {"grid": heads}},
                           {**tune, "keep_top_k": len(preset["seeds"]) * len(heads)})
        sweep_stage(run, path, home / name)
        finals.append(home / name)
    for name, variant in preset.get("variants", {}).get(task, {}).items():
        head, changed = variant["zero_shot_head"], {k: v for k, v in variant.items() if k != "zero_shot_head"}
        init = next(i for i, heads in inits.items() if head in heads)
        path = write_space(home / f"final_{name}.yaml", f"final_{name}",
                           {**data, **cut(task, train=final["train"].get(task))},
                           {**fixed, "initializer_name": init, "num_train_epochs": final["epochs"][task],
                            "eval_steps": final["eval_steps"][task], **changed}, {"zero_shot_head": {"grid": [head]}},
                           {**tune, "keep_top_k": len(preset["seeds"])})
        sweep_stage(run, path, home / f"final_{name}")
        finals.append(home / f"final_{name}")
    return finals


def run_task(task: str, preset: dict, data_root: Path, out: Path, run: Runner, until: str | None) -> None:

    sub, positive, _ = TASKS[task]
    folder, home = data_root / sub, out / task
    home.mkdir(parents=True, exist_ok=True)
    data = {"dir": str(folder), "positive_labels": positive}
    tune = {"metric": HEADLINE, "mode": "max", "searcher": "grid", "scheduler": "fifo", "seeds": preset["seeds"],
            "resources_per_trial": preset["resources"],
            **({"storage_path": f"{run.storage}/{task}"} if run.storage else {})}
    zero_shot_stages(run, task, home, data, preset, tune, until)
    if until not in ("compare", "final"):
        method, checkpoint = best_final(home)
        for split in ("dev", "test"):
            heads = home / f"heads_{split}"
            if not (heads / "heads.parquet").is_file():
                storage = ["--storage", f"{run.storage}/{task}/heads_{split}"] if run.storage else []
                run("sweep.heads", "--model", checkpoint, preset["model"], *data_args(folder, positive), "--split",
                    split, "--output", str(heads), *storage, ray=True)
        if until != "heads":
            budget = preset["ceiling"][task]
            fixed = {k: v for k, v in FIXED.items() if not k.startswith(("soft_attention", "square", "attend",
                                                                        "sentence_loss", "zero"))}
            path = write_space(home / "ceiling.yaml", "ceiling", {**data, **cut(task, train=budget["train"])},
                               {**fixed, "model_name": preset["model"], "is_seq_class": False,
                                "learning_rate": CEILING_LR}, {},
                               {**tune, "metric": on_dev(TOK_F1), "seeds": budget["seeds"],
                                "keep_top_k": len(budget["seeds"])})
            sweep_stage(run, path, home / "ceiling")
            if until != "ceiling":
                predictions(run, home, folder, positive, checkpoint, method, preset)
    (home / "table.md").write_text(task_table(task, home, preset), encoding="utf-8")
    if (home / "curves.png").is_file() and preset is PRESETS["cpu"]:  # the picture bench/RESULTS.md shows
        shutil.copyfile(home / "curves.png", ROOT / "bench" / f"quality_{task}_curves.png")


def best_final(home: Path) -> tuple[str, str]:
    """(head, checkpoint) shown by the head scan and LIME: the head whose trials' mean dev value of the headline
    rule's metric at its pick is best, and its trial with the best one (zero-shot: no token label chooses)."""
    picks, boards = final_tables(home)
    mine = picks[picks["rule_metric"] == HEADLINE]
    sweep, head = mine.groupby(["sweep", "method"])[HEADLINE].mean().idxmax()
    trials = boards[(boards["sweep"] == sweep) & (boards["method"] == head) & boards["checkpoint"].notna()]
    return str(head), str(trials.sort_values(HEADLINE, ascending=False)["checkpoint"].iloc[0])


def predictions(run: Runner, home: Path, folder: Path, positive: list[str], checkpoint: str, method: str,
                preset: dict) -> None:
    """Word scores (sweep.predict) and their metrics (sweep.evaluate, calibrated on dev) under home/preds."""
    sample = ["--sample", str(preset["lime_sample"])] if preset["lime_sample"] else []
    jobs = [("lime", ["--model", checkpoint, "--method", "lime", "--lime-samples", str(preset["lime_samples"]),
                      "--no-progress"], sample),
            ("own_sample", ["--model", checkpoint, "--method", method], sample),
            ("random_sample", ["--method", "random"], sample)]
    for name, method_args, subset in jobs:
        where = home / "preds" / name
        if (where / "metrics.json").is_file():
            continue
        where.mkdir(parents=True, exist_ok=True)
        gold = [*data_args(folder, positive), *subset]
        for split in ("dev", "test"):
            if not (where / f"{split}.parquet").is_file():  # the TSV and its Parquet are written together
                run("sweep.predict", *method_args, *gold, "--split", split, "--output", str(where / f"{split}.tsv"))
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
    if args.num_cpus is not None and (args.num_cpus < 1 or args.address):
        print("--num-cpus: expected a positive number, for a local Ray only (not with --address)", file=sys.stderr)
        return 2
    run = Runner(out, args.address, args.storage, args.num_cpus)
    start = time.monotonic()
    for task in tasks:
        run_task(task, preset, data_root, out, run, args.until)
        write_tables(out, tasks, preset)
    print(f"\nquality: {len(tasks)} tasks in {time.monotonic() - start:.0f} s (this invocation); "
          f"tables in {out / 'tables.md'}")
    print((out / "tables.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
