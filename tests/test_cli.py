"""One command-line vocabulary: the zs-sweep console command, no abbreviated flags, the same flags for the same
things in every command, and --help without the heavy libraries (what makes it answer in well under a second)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sweep import cli
from sweep.common import data_overrides
from sweep.heads import parse_poolings
from sweep.space import load_sweep

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
COMMANDS = ("run", "heads", "predict", "evaluate", "report")
HEAVY = ("torch", "transformers", "pandas", "pyarrow", "sklearn", "matplotlib", "ray", "mlflow")


def parser_of(command: str):
    """Each command's own argparse parser."""
    return __import__(f"sweep.{command}", fromlist=["parser"]).parser()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_none_of_the_heavy_libraries(command):
    code = (f"import sys; sys.argv = ['x', '--help']\nimport sweep.{command} as m\ntry:\n    m.main()\n"
            f"except SystemExit:\n    pass\nprint(sorted({{n.split('.')[0] for n in sys.modules}} & {set(HEAVY)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m sweep." in proc.stdout and proc.stdout.strip().endswith("[]"), proc.stdout[-500:]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_shares_the_flag_names(command):
    flags = parser_of(command)._option_string_actions
    assert {"--smoke-test", "--output", "--help"} <= set(flags)
    if command != "report":
        assert {"--data", "--data-dir", "--positive-labels", "--seed-dataset", "--data-root", "--limit",
                "--sample"} <= set(flags)
    if command in ("run", "heads"):
        assert {"--storage", "--address", "--dashboard-host"} <= set(flags)
    if command in ("predict", "report"):
        assert "--trial" in flags


@pytest.mark.parametrize("command", COMMANDS)
def test_an_abbreviated_flag_is_refused(command, capsys):
    module = __import__(f"sweep.{command}", fromlist=["main"])
    assert module.main(["--smoke-tes"]) == 2
    assert "unrecognized arguments: --smoke-tes" in capsys.readouterr().err


def test_run_data_flags_override_the_yaml_and_a_seed_dataset_is_named_for_what_it_is(capsys):
    from sweep import run

    args = run.parse_args(["search_spaces/demo.yaml", "--data-dir", "/data/fce", "--positive-labels", "i",
                           "--limit", "16", "--storage", "/shared/sweeps", "zero_n=2"])
    sweep = load_sweep(ROOT / args.space, data_overrides(args) + args.overrides)
    assert (sweep.data.dir, sweep.data.positive_labels, sweep.data.dataset) == ("/data/fce", ("i",), None)
    assert sweep.data.limit == {"train": 16, "dev": 16, "test": 16} and sweep.fixed["zero_n"] == 2
    assert run.main(["search_spaces/demo.yaml", "--data", "fce_v1"]) == 2  # once argparse's --data-root
    assert capsys.readouterr().err == "error: --data fce_v1: unknown dataset; known: wnut16 (or --data-dir DIR); " \
                                      "the seed's fce_v1 is --seed-dataset fce_v1\n"


def test_heads_pooling_is_a_list_or_a_comma_separated_one():
    assert parse_poolings(["received", "cls"]) == parse_poolings(["received,cls"]) == ("received", "cls")
    assert parse_poolings(["cls"]) == ("cls",)


def test_the_zs_sweep_command_runs_every_command(tmp_path, capsys):
    assert cli.main([]) == 2 and "zs-sweep run SPACE.yaml" in capsys.readouterr().out
    assert cli.main(["train"]) == 2
    assert capsys.readouterr().err == "error: zs-sweep train: unknown command; expected one of run, heads, predict, " \
                                      "evaluate, report\n"
    script = shutil.which("zs-sweep", path=str(Path(sys.executable).parent))
    assert script, "the zs-sweep console script is not installed (pip install -e .)"
    out = tmp_path / "metrics.json"
    proc = subprocess.run([script, "evaluate", "--smoke-test", "--output", str(out)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout) == result and result["n_tokens"] > 0 and result["n_positive"] > 0
    assert [r["threshold_kind"] for r in result["rows"]] == ["fixed", "dev_calibrated"]
    assert "python -m sweep.evaluate --output" in result["provenance"]["command"]
