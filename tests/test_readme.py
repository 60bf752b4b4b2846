"""The README is true about the command lines: every command line in it (code blocks and `inline code`), and the
command each search space names in its first line, is parsed by its command's own parser, so a flag that does not
exist fails here; the quick smoke tests it lists run as written. (sweep.run's and sweep.heads's --smoke-test run
in test_run_smoke.py and test_heads_cli.py, as the user types them: they need a Ray start each.)"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMAND = re.compile(r"(?:python -m sweep\.|zs-sweep )(run|heads|predict|evaluate|report)\b([^`\n|&;]*)")
META = {"[", "]", "|", "...", "[...]"}  # a usage line's brackets and alternatives, not arguments
QUICK = ("predict", "evaluate", "report")  # smoke tests without Ray


def command_lines(text: str) -> list[tuple[str, list[str]]]:
    """(command, its arguments) of every command line in ``text``; a usage line's meta characters dropped."""
    found = []
    for match in COMMAND.finditer(text):
        rest = match.group(2).split("  #")[0].split(" # ")[0].strip().rstrip("`'\")")
        tokens = [t.strip("[]") for t in shlex.split(rest.replace("[", " [ ").replace("]", " ] "))]
        found.append((match.group(1), [t for t in tokens if t and t not in META]))
    return found


def parse(command: str, args: list[str]):
    module = __import__(f"sweep.{command}", fromlist=["parser"])
    parser = module.parser()
    return parser.parse_intermixed_args(args) if command == "run" else parser.parse_args(args)


LINES = command_lines(README)
SPACES = [(p.name, command_lines(p.read_text(encoding="utf-8").splitlines()[0]))
          for p in sorted((ROOT / "search_spaces").glob("*.yaml"))]


def test_the_readme_names_every_command_and_many_command_lines():
    assert {c for c, _ in LINES} == {"run", "heads", "predict", "evaluate", "report"} and len(LINES) >= 15


EXTERNAL = {"--backend-store-uri", "--generate", "--logdir", "--tmux"}  # mlflow ui, ray, tensorboard's own


def test_every_flag_the_readme_names_exists():
    """A flag named in prose (`--calibrate-on`) belongs to a command, to a bench script or to another tool."""
    ours = {flag for command in ("run", "heads", "predict", "evaluate", "report")
            for flag in __import__(f"sweep.{command}", fromlist=["parser"]).parser()._option_string_actions}
    bench = {flag for path in (ROOT / "bench").glob("*.py")
             for flag in re.findall(r'add_argument\("(--[a-z0-9-]+)"', path.read_text(encoding="utf-8"))}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README))
    assert named - ours - bench - EXTERNAL == set()


@pytest.mark.parametrize("command,args", LINES, ids=[f"{c} {' '.join(a)}"[:80] for c, a in LINES])
def test_every_readme_command_line_parses(command, args):
    parse(command, args)  # an unknown flag, or a flag without its value, is InputError: the test fails


@pytest.mark.parametrize("name,lines", SPACES, ids=[n for n, _ in SPACES])
def test_every_search_space_names_a_command_that_parses(name, lines):
    assert lines, f"{name}: its first line should give its command"
    for command, args in lines:
        parse(command, args)


def test_an_unknown_flag_would_fail_the_check():
    from zs_core.errors import InputError

    (command, args), = command_lines("`zs-sweep predict --model runs/demo --method lime --lime-sample 64`")
    with pytest.raises(InputError, match="unrecognized arguments: --lime-sample"):
        parse(command, args)


def test_what_the_readme_says_smoke_runs_write():
    from sweep.space import load_sweep, smoke

    assert "runs/demo-smoke/" in README
    assert parse("run", ["--smoke-test"]).output == "runs"
    assert smoke(load_sweep(ROOT / "search_spaces" / "demo.yaml")).name == "demo-smoke"


@pytest.mark.slow
@pytest.mark.parametrize("command", QUICK)
def test_the_quick_smoke_tests_run_as_the_readme_writes_them(command, tmp_path):
    written = f"zs-sweep {command} --smoke-test"
    assert f"`{written}`" in README or f"\n{written}" in README
    script = Path(sys.executable).parent / "zs-sweep"
    proc = subprocess.run([str(script), command, "--smoke-test"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(tmp_path.iterdir())  # a smoke test leaves nothing behind unless given --output


def test_the_readme_snippet_loads_a_sweep_folders_classifier_and_scores_words(tmp_path, capsys):
    from sweep.smoke import smoke_sweep

    snippet = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    folder = smoke_sweep(tmp_path)
    assert '"runs/demo"' in snippet
    exec(compile(snippet.replace('"runs/demo"', repr(str(folder))), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.fullmatch(r"P\(positive\) 0\.\d{3} \[(0\.\d+(e-\d+)?, ){3}0\.\d+(e-\d+)?\]\n", printed), printed
