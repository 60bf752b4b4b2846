"""Two sweeps at once: one driver per sweep folder (a lock file holding pid and host), stale locks taken over,
the lock released on every exit, and an output folder that cannot be written refused before Ray starts.

Real `python -m sweep.run` processes throughout; run_sweep, write_space, board and trials are conftest fixtures.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.lock import LOCK_FILE

# tiny-random, 32 sentences a split, 1 epoch, 2 seeds: two trials, one after the other on one CPU
TUNE = {"searcher": "random", "scheduler": "fifo", "seeds": [1, 2], "keep_top_k": 1,
        "resources_per_trial": {"cpu": 1}}


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def start_driver(space: Path, out: Path, log: Path, repo_root: Path) -> subprocess.Popen:
    """``python -m sweep.run SPACE --output OUT`` in the background (its own process group), output to LOG."""
    return subprocess.Popen([sys.executable, "-m", "sweep.run", str(space), "--output", str(out)], cwd=repo_root,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(path: Path, driver: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert driver.poll() is None and time.time() < deadline, f"the first sweep ended before writing {path}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_second_sweep_is_refused_while_the_first_runs_and_the_first_is_untouched(
        tmp_path, write_space, run_sweep, board, trials, repo_root):
    space, out = write_space(tmp_path, "twice", tune=TUNE), tmp_path / "out"
    folder, host, stale = out / "twice", socket.gethostname(), dead_pid()
    folder.mkdir(parents=True)  # a driver killed earlier left its lock behind
    (folder / LOCK_FILE).write_text(json.dumps({"pid": stale, "host": host, "since": "2020-01-01T00:00:00+00:00"}))
    first = start_driver(space, out, tmp_path / "first.log", repo_root)
    try:
        wait_for(folder / "sweep.yaml", first)  # written once Ray has started: the first sweep is running
        owner = json.loads((folder / LOCK_FILE).read_text())
        assert owner["pid"] == first.pid and owner["host"] == host
        for extra in ((), ("--fresh",), ("--resume",)):  # no way around the lock, not even --fresh
            began = time.monotonic()
            proc = run_sweep(space, "--output", out, *extra, expect=2)
            seconds = time.monotonic() - began
            assert proc.stdout == (f"error: {folder}: sweep 'twice' is running (pid {first.pid} on {host} since "
                                   f"{owner['since']}); wait for it, or delete {folder / LOCK_FILE} if that "
                                   f"process is gone\n")
            print(f"second sweep{' ' if extra else ''}{' '.join(extra)} refused in {seconds:.1f} s")
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    log = (tmp_path / "first.log").read_text()
    assert f"notice: {folder / LOCK_FILE}: taking over a stale lock (pid {stale} on {host} is not running)" in log
    runs = trials(board(folder))
    assert sorted(runs["seed"]) == [1, 2] and (runs["status"] == "TERMINATED").all()
    assert (folder / "sweep.yaml").read_text().startswith(f"# python -m sweep.run {space} --output {out}\n")
    assert not (folder / LOCK_FILE).exists()  # released on exit


@pytest.mark.slow
def test_ctrl_c_releases_the_lock(tmp_path, write_space, repo_root):
    space, out = write_space(tmp_path, "interrupted", tune=TUNE), tmp_path / "out"
    driver = start_driver(space, out, tmp_path / "driver.log", repo_root)
    try:
        wait_for(out / "interrupted" / "sweep.yaml", driver)
        assert (out / "interrupted" / LOCK_FILE).exists()
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends: the whole process group
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert not (out / "interrupted" / LOCK_FILE).exists()


@pytest.mark.parametrize("who", ["a live process on this host", "a process on another host"])
def test_a_lock_that_is_not_stale_is_never_taken(tmp_path, run_sweep, who):
    folder = tmp_path / "out" / "demo-smoke"
    folder.mkdir(parents=True)
    pid, host = (os.getpid(), socket.gethostname()) if who.startswith("a live") else (dead_pid(), "elsewhere")
    text = json.dumps({"pid": pid, "host": host, "since": "2020-01-01T00:00:00+00:00"})
    (folder / LOCK_FILE).write_text(text)
    (folder / "leaderboard.parquet").write_text("theirs")
    proc = run_sweep("--smoke-test", "--output", tmp_path / "out", expect=2)
    assert proc.stdout == (f"error: {folder}: sweep 'demo-smoke' is running (pid {pid} on {host} since "
                           f"2020-01-01T00:00:00+00:00); wait for it, or delete {folder / LOCK_FILE} if that "
                           f"process is gone\n")
    assert (folder / LOCK_FILE).read_text() == text and (folder / "leaderboard.parquet").read_text() == "theirs"
    assert sorted(p.name for p in folder.iterdir()) == ["leaderboard.parquet", LOCK_FILE]


def test_bad_input_after_the_lock_releases_it_and_leaves_no_folder(tmp_path, write_space, run_sweep):
    space = write_space(tmp_path, "baddata", data={"dir": str(tmp_path / "nowhere"), "positive_labels": ["i"]})
    proc = run_sweep(space, "--output", tmp_path / "out", expect=2)
    assert proc.stdout.startswith("error: ") and proc.stdout.count("\n") == 1
    assert not (tmp_path / "out").exists()  # the folders made for the lock are gone again


def test_an_output_folder_under_a_file_is_refused_before_ray_starts(tmp_path, run_sweep):
    (tmp_path / "file").write_text("")
    began = time.monotonic()
    proc = run_sweep("--smoke-test", "--output", tmp_path / "file" / "sub", expect=2)
    assert proc.stdout == (f"error: --output {tmp_path / 'file' / 'sub'}: {tmp_path / 'file'} is a file, so "
                           f"nothing can be written below it\n")
    print(f"refused in {time.monotonic() - began:.1f} s")


def test_a_read_only_output_folder_is_refused_before_ray_starts(tmp_path, run_sweep):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root's writes (the folder-under-a-file test covers root)")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        proc = run_sweep("--smoke-test", "--output", tmp_path / "ro", expect=2)
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert proc.stdout == (f"error: {tmp_path / 'ro' / 'demo-smoke'}: the output folder is not writable "
                           f"(Permission denied); expected a folder this user can write, e.g. --output runs\n")
