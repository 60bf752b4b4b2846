"""What sweep.run's terminal shows while trials train: one line per running trial (step/total, epoch, train loss,
the last dev metric, elapsed and time left) and a line at each trial's start, dev evaluation and end.

How a step reaches the driver without adding Tune results (the leaderboard reads every result as a dev
evaluation): each trial posts ``zs_core.train``'s on_step state, at most every POST_SECONDS and at once when a
dev evaluation begins, to a small Ray actor (``Board``, 0 CPUs; a fire-and-forget call); the driver's
``TrialProgress``, a Tune callback, reads the board from Tune's own event loop (``on_step_end``). On a terminal
the running trials are a block redrawn in place every LIVE_SECONDS; redirected, a plain line per running
trial whenever it moved on, at most every PLAIN_SECONDS, with no ANSI codes.

Tune pickles its callbacks with the experiment (what --resume restores), so ``TrialProgress`` keeps only its
settings there and finds this process's board (``start_board``) and terminal at run time.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

from ray import tune

from sweep.text import number_text
from zs_core.protocol import TRAIN_LOSS

POST_SECONDS = 2.0  # a trial posts its step at most this often
LIVE_SECONDS = 1.0  # a terminal's block of running trials is redrawn this often
PLAIN_SECONDS = 10.0  # redirected output: a running trial's line at most this often
_RUNTIME: dict[str, Any] = {"board": None}  # this driver's board (use_board)


class Board:
    """The latest posted state of every trial; a Ray actor (``start_board``)."""

    def __init__(self):
        self.states: dict[str, dict] = {}

    def post(self, trial_id: str, state: dict) -> None:
        self.states[trial_id] = state

    def snapshot(self) -> dict[str, dict]:
        return self.states


def quiet_terminal() -> None:
    """No Ray, Tune or Optuna boilerplate in the driver's output: Tune's tables, result boxes and start banner
    are off by RunConfig(verbose=0) with Tune's classic output engine (RAY_AIR_NEW_OUTPUT=0; the newer one
    prints its banner and a TensorBoard line pointing at a folder without events even at verbose 0);
    redirected output carries no ANSI codes (Ray colours its worker lines' prefixes and log-deduplication
    notes: RAY_COLOR_PREFIX=0 and colorama's stripping wrapper)."""
    import logging
    import os

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    for name in ("ray.tune", "ray.train", "ray.air", "mlflow", "alembic"):  # mlflow: "Creating ... tables"
        logging.getLogger(name).setLevel(logging.WARNING)
    if not sys.stdout.isatty():
        import colorama

        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        sys.stdout = colorama.AnsiToWin32(sys.stdout, strip=True).stream
    if not sys.stderr.isatty():
        import colorama

        sys.stderr = colorama.AnsiToWin32(sys.stderr, strip=True).stream


def start_board():
    """A Board actor for this driver (0 CPUs: it never waits for a trial's CPU); also what TrialProgress reads."""
    import ray

    board = ray.remote(num_cpus=0, max_restarts=0)(Board).remote()
    _RUNTIME["board"] = board
    return board


def poster(board, trial_id: str) -> Callable[[dict], None]:
    """The trial's on_step: post the state with the seconds since training began, at most every POST_SECONDS
    (a dev evaluation's start and the last step at once); never waits for the board."""
    start, last = time.monotonic(), [-math.inf]

    def post(state: dict) -> None:
        now = time.monotonic()
        if state["phase"] == "train" and state["step"] != state["steps"] and now - last[0] < POST_SECONDS:
            return
        last[0] = now
        board.post.remote(trial_id, {**state, "elapsed": now - start})

    return post


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class TrialView:
    """What the driver knows of one trial: start, first and latest posted state, its dev evaluations."""

    def __init__(self, label: str):
        self.label, self.started = label, time.monotonic()
        self.first: dict | None = None
        self.latest: dict | None = None
        self.evaluations, self.last_metric, self.evaluated_step = 0, None, 0
        self.best_epoch, self.best = None, None  # the trial's own pick and its metric, as it reports them
        self.printed: tuple | None = None  # (step, phase) of the last plain line, and when
        self.printed_at = -math.inf

    def take(self, state: dict) -> None:
        if self.first is None or state["elapsed"] < self.latest["elapsed"]:  # a retried trial starts again
            self.first = state
        self.latest = state

    def left(self) -> str:
        """", ~12m left" from the steps a second since the first post (dev evaluations included), or ""."""
        first, now = self.first, self.latest
        if not first or now["elapsed"] <= first["elapsed"] or now["step"] <= first["step"]:
            return ""
        rate = (now["step"] - first["step"]) / (now["elapsed"] - first["elapsed"])
        return f", ~{duration((now['steps'] - now['step']) / rate)} left"


def epoch_text(epoch: float) -> str:
    return f"{round(float(epoch), 2):g}"


class TrialProgress(tune.Callback):
    """The Tune callback behind sweep.run's terminal; ``metric`` and ``mode`` are the sweep's selection."""

    def __init__(self, metric: str, mode: str):
        self.metric, self.mode = metric, mode

    def __getstate__(self) -> dict:  # what Tune pickles with the experiment: the settings only
        return {"metric": self.metric, "mode": self.mode}

    def _runtime(self) -> tuple[dict[str, TrialView], dict]:
        if "_views" not in self.__dict__:
            self._views: dict[str, TrialView] = {}
            self._screen = {"drawn": 0, "polled": 0.0, "live": sys.stdout.isatty()}
        return self._views, self._screen

    def _view(self, trial) -> TrialView:
        views, _ = self._runtime()
        return views.setdefault(trial.trial_id, TrialView(trial.trial_id))

    # --- Tune's events ------------------------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        view = self._view(trial)
        view.started = time.monotonic()
        params = " ".join(f"{k} {v if not isinstance(v, float) else number_text(v)}"
                          for k, v in sorted(trial.config.items()) if not k.startswith("__"))
        self._event(f"{view.label} started{': ' + params if params else ''}")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        view = self._view(trial)
        value = result.get(self.metric)
        if "epoch" not in result:  # a NaN loss's report: the end line says it
            return
        view.evaluations += 1
        view.evaluated_step = result.get("step", view.evaluated_step)
        view.last_metric = value
        view.best_epoch = result.get("best_epoch", view.best_epoch)  # the trial's own pick (zs_core.protocol),
        view.best = result.get("best_value", view.best)  # made before a --resume too
        steps = (view.latest or {}).get("steps")
        step = f" (step {result.get('step')}{'/' + str(steps) if steps else ''})"
        self._event(f"{view.label} epoch {epoch_text(result['epoch'])}{step}: loss "
                    f"{number_text(result.get(TRAIN_LOSS, math.nan))}, {self.metric} {number_text(value)} "
                    f"(best {number_text(view.best)}), {duration(time.monotonic() - view.started)}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        view = self._view(trial)
        nan = (trial.last_result or {}).get("nan_loss") == 1
        best = "" if view.best is None else \
            f": best {self.metric} {number_text(view.best)} at epoch {epoch_text(view.best_epoch)}"
        self._event(f"{view.label} {'stopped: the loss is not finite' if nan else 'done'} after "
                    f"{view.evaluations} evaluations, {duration(time.monotonic() - view.started)}{best}")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        view = self._view(trial)
        self._event(f"{view.label} failed after {view.evaluations} evaluations; Tune retries it from its latest "
                    f"evaluation")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        view = self._view(trial)
        self._event(f"{view.label} errored after {view.evaluations} evaluations (the leaderboard has its error)")

    def on_step_end(self, iteration, trials, **info) -> None:
        _, screen = self._runtime()
        now = time.monotonic()
        if now - screen["polled"] < (LIVE_SECONDS if screen["live"] else min(LIVE_SECONDS * 2, PLAIN_SECONDS)):
            return
        screen["polled"] = now
        running = [t for t in trials if t.status == "RUNNING"]
        self._poll(running)
        if screen["live"]:
            self._draw([self._line(self._view(t)) for t in running])
        else:
            for trial in running:
                self._plain(self._view(trial), now)

    def on_experiment_end(self, trials, **info) -> None:
        self._draw([])

    # --- the terminal --------------------------------------------------------------------------------------
    def _poll(self, running) -> None:
        board = _RUNTIME["board"]
        if board is None or not running:
            return
        import ray

        try:
            states = ray.get(board.snapshot.remote(), timeout=5)
        except Exception:  # noqa: BLE001  a slow or lost board must never stop the sweep
            return
        for trial in running:
            if trial.trial_id in states:
                self._view(trial).take(states[trial.trial_id])

    def _line(self, view: TrialView) -> str:
        state, elapsed = view.latest, duration(time.monotonic() - view.started)
        if state is None:
            return f"{view.label} starting, {elapsed}"
        where = f"{view.label} step {state['step']}/{state['steps']} (epoch {epoch_text(state['epoch'])}/" \
                f"{state.get('epochs', '?')})"
        last = "" if view.last_metric is None else f", last {self.metric} {number_text(view.last_metric)}"
        if state["phase"] == "dev" and state["step"] > view.evaluated_step:
            return f"{where}: evaluating on dev{last}, {elapsed}"
        return f"{where}: loss {number_text(state['loss'])}{last}, {elapsed}{view.left()}"

    def _plain(self, view: TrialView, now: float) -> None:
        state = view.latest
        key = (state["step"], state["phase"]) if state else None
        stale = state is not None and state["step"] <= view.evaluated_step  # the evaluation's line said it
        if key == view.printed or now - view.printed_at < PLAIN_SECONDS or stale:
            return
        view.printed, view.printed_at = key, now
        print(self._line(view), flush=True)

    def _event(self, line: str) -> None:
        _, screen = self._runtime()
        drawn = screen["drawn"]
        if screen["live"] and drawn:
            sys.stdout.write(f"\x1b[{drawn}F\x1b[J")  # up to the block's first line, clear to the end
            screen["drawn"] = 0
        print(line, flush=True)
        if screen["live"] and drawn:
            self._draw(screen.pop("lines", []))

    def _draw(self, lines: list[str]) -> None:
        _, screen = self._runtime()
        if not screen["live"]:
            return
        text = f"\x1b[{screen['drawn']}F\x1b[J" if screen["drawn"] else ""
        text += "".join(f"  {line}\n" for line in lines)
        sys.stdout.write(text)
        sys.stdout.flush()
        screen["drawn"], screen["lines"] = len(lines), lines


class ScanProgress(tune.Callback):
    """sweep.heads' terminal: a plain line per model as its scan goes (every ~10 s) and one as it ends."""

    def __init__(self, names: dict[str, str]):
        self.names = dict(names)

    def __getstate__(self) -> dict:
        return {"names": self.names}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        name = self.names.get(trial.config.get("model"), trial.trial_id)
        if result.get("scanning") == "done":
            print(f"{name}: {result['heads']} heads scanned, best MAP {result['best_map']:.4f}", flush=True)
        elif "sentences" in result:
            print(f"{name}: {result['scanning']}, {result['sentences']}/{result['of']} sentences", flush=True)

