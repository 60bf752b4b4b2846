"""Ctrl-C (SIGINT) and SIGTERM during a command that runs Ray Tune trials.

Ctrl-C asks Tune to stop as it does on its own Ctrl-C: it writes its experiment state one last time and
``fit()`` returns, with the unfinished trials' latest checkpoints in place (the handler here forwards it as
SIGUSR1, the signal Tune's loop listens to; Tune's own SIGINT handler is off, TUNE_DISABLE_SIGINT_HANDLER).
SIGTERM, a second Ctrl-C, or one before Tune's loop runs stops at once, as kill -9 would but with the lock
released: a SIGTERM to the process group (a scheduler ending a job) stops Ray's own processes too, so Tune
could not clean up; Tune saves its experiment state whenever a trial reports, and --resume goes on from it.
Either way nothing is finalised (no leaderboard, no checkpoint deleted); the command prints the one line that
resumes it and exits 130 (SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import sys
from typing import Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as a shell reports it


class Interrupted(Exception):
    """A command stopped by SIGINT or SIGTERM (or by Ray, ``code`` given); ``code`` is its exit code."""

    def __init__(self, signum: int, message: str, code: int | None = None):
        super().__init__(message)
        self.code = EXIT_CODES.get(signum, 130) if code is None else code


def lost_to_memory(err: RuntimeError, resume: str) -> Interrupted | None:
    """Ray's memory monitor kills a worker when the node passes its memory threshold; Tune does not expect the
    OutOfMemoryError this gives and ends its loop with a RuntimeError. The Interrupted that says so and how to
    go on (exit 1), or None for any other error. Tune's experiment state is saved as trials report, so --resume
    continues every unfinished trial from its last evaluation."""
    from ray.exceptions import OutOfMemoryError

    if not isinstance(err.__cause__, OutOfMemoryError):
        return None
    what = str(err.__cause__).split(". ")[0].strip()
    return Interrupted(signal.SIGINT, f"Ray stopped the sweep: {what}; nothing was finalised; go on with: {resume} "
                       f"(fewer trials at once: --num-cpus or tune.max_concurrent)", code=1)


class GracefulStop:
    """While active, SIGINT and SIGTERM set ``signum`` and ask a running Tune loop to stop; outside the loop
    (before Tune installs its handler) and on a second signal they raise KeyboardInterrupt."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        tune_listens = signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None, _ignore)
        if first and signum == signal.SIGINT and tune_listens:
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune stops after its current step and saves its state
        else:  # SIGTERM (a process group's SIGTERM stops Ray's own processes too: Tune could not clean up and
            raise KeyboardInterrupt  # would wait a minute for them), a second signal, or one before Tune's loop


def _ignore(signum, frame) -> None:
    """SIGUSR1 before Tune installs its own handler: not a reason to die."""


class _NoRayHints(logging.Filter):
    """Tune's own lines about a stop (its Tuner.restore(...) hint, the unfinished trials' list): the command
    prints the one line that resumes it instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(hint in text for hint in ("Tuner.restore", "Trials did not complete", "Stop signal received"))


@contextlib.contextmanager
def graceful_stop() -> Iterator[GracefulStop]:
    """SIGINT and SIGTERM stop Tune gracefully inside the block (see the module); the old handlers come back
    after it."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    stop, hints = GracefulStop(), _NoRayHints()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    old[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, _ignore)
    logging.getLogger("ray.tune.tune").addFilter(hints)
    try:
        yield stop
    finally:
        logging.getLogger("ray.tune.tune").removeFilter(hints)
        for sig, handler in old.items():
            signal.signal(sig, handler)


def resume_command(module: str, argv: list[str] | None) -> str:
    """The command line that continues an interrupted ``python -m MODULE ARGV``: the same with --resume (and
    without --fresh, which would start over)."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--fresh"]
    return shlex.join(["python", "-m", module, *args, *([] if "--resume" in args else ["--resume"])])


LATEST: dict[str, str] = {}  # trial id -> Tune status after the last step of the running sweep (sweep.statuses)


def unfinished() -> int:
    """Trials neither TERMINATED nor ERROR when Tune's loop last stepped (RUNNING, PENDING, PAUSED)."""
    return sum(status not in ("TERMINATED", "ERROR") for status in LATEST.values())


def raise_if_interrupted(stop: GracefulStop, resume: str) -> None:
    """After ``fit()``: an Interrupted naming how many trials are unfinished and how to go on, when a signal
    came (or trials are unfinished for another reason, exit 1)."""
    if stop.signum is None and not unfinished():
        return
    why = f"interrupted ({signal.Signals(stop.signum).name})" if stop.signum else "stopped"
    n = unfinished()
    error = Interrupted(stop.signum or signal.SIGINT, f"{why} with {n} trial{'s' if n != 1 else ''} unfinished; "
                        f"nothing was finalised; go on with: {resume}")
    if stop.signum is None:
        error.code = 1
    raise error


def stopped_at_once(stop: GracefulStop, resume: str) -> Interrupted:
    """The Interrupted of a stop that did not wait for Tune (SIGTERM, a second signal)."""
    signum = stop.signum or signal.SIGINT
    return Interrupted(signum, f"interrupted ({signal.Signals(signum).name}), stopped at once; nothing was "
                       f"finalised; go on with: {resume}")
