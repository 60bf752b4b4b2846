"""Every YAML under search_spaces/ loads, maps to a Tune space, builds a Tuner, and shrinks to a smoke run."""
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from sweep.space import load_sweep, smoke, to_tune_space

FOLDER = Path(__file__).resolve().parent.parent / "search_spaces"
FILES = sorted(FOLDER.glob("*.yaml"))


def test_the_issue_files_are_all_there():
    assert {f.stem for f in FILES} >= {"gamma", "alpha", "zero", "lr", "paper", "demo"}


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_search_space_file(path, tmp_path):
    from sweep.run import make_tuner
    from sweep.trial import train_trial

    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# python -m sweep.run search_spaces/{path.name}", "each file starts with its exact command"
    sweep = load_sweep(path)
    assert sweep.name == path.stem
    space = to_tune_space(sweep.search, grid=sweep.tune.searcher == "grid")
    assert set(space) == set(sweep.search)
    assert make_tuner(sweep, train_trial, str(tmp_path), sweep.name) is not None

    small = smoke(sweep)
    assert small.fixed["model_name"] == "tiny-random" and small.fixed["num_train_epochs"] == 1
    assert small.tune.num_samples == 1 and len(small.tune.seeds) == 2
    assert small.data.limit == {"train": 32, "dev": 32, "test": 32}
    assert small.tune.resources_per_trial["cpu"] == 1
    if small.tune.searcher == "grid":  # one grid point x 2 seeds = 2 trials
        assert all(len(next(iter(spec.values()))) == 1 for spec in small.search.values())
    make_tuner(small, train_trial, str(tmp_path), small.name)
