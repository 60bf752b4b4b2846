"""A sweep that Ray stops by killing a worker for low memory ends with one line that says how to go on."""
from __future__ import annotations

import pytest
from ray.exceptions import OutOfMemoryError

from sweep.interrupt import lost_to_memory

REASON = ("1 worker(s) were killed due to the node running low on memory. Memory on the node (IP: 192.0.2.2) was "
          "21.96GB used / 23.59GB limit (0.930973)")


def tune_gave_up() -> RuntimeError:
    """What Tune's actor manager raises when an actor task fails with an error it does not expect."""
    try:
        try:
            raise OutOfMemoryError(REASON)
        except OutOfMemoryError as oom:
            raise RuntimeError(f"Caught unexpected exception: {oom}") from oom
    except RuntimeError as err:
        return err


def test_the_line_names_the_reason_and_the_resume_command_and_exits_1():
    lost = lost_to_memory(tune_gave_up(), "python -m sweep.run s.yaml --resume")
    assert lost.code == 1
    assert str(lost) == ("Ray stopped the sweep: 1 worker(s) were killed due to the node running low on memory; "
                         "nothing was finalised; go on with: python -m sweep.run s.yaml --resume (fewer trials at "
                         "once: --num-cpus or tune.max_concurrent)")
    assert lost_to_memory(RuntimeError("another error"), "x") is None  # not ours to explain: it propagates


@pytest.mark.slow
def test_sweep_run_ends_with_that_line_and_finalises_nothing(tmp_path, capsys, monkeypatch):
    """The real driver up to Tune's loop (Ray started, the Tuner built); its fit() fails as Tune's did when Ray's
    memory monitor killed a trial's worker on this machine (2026-12-02, several sweeps at once)."""
    from ray import tune

    from sweep import run

    def fit(self):
        raise tune_gave_up()

    monkeypatch.setattr(tune.Tuner, "fit", fit)
    out = tmp_path / "out"
    assert run.main(["--smoke-test", "--output", str(out), "--num-cpus", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted: Ray stopped the sweep: 1 worker(s) were killed due to the node running "
                              "low on memory; nothing was finalised; go on with: ")
    assert "--resume" in err[-1] and not any("Traceback" in line for line in err)
    assert not list(out.rglob("leaderboard.parquet"))
