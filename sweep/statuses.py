"""A Tune callback that keeps every trial's status after each step of Tune's loop in sweep.interrupt.LATEST.

Tune marks the trials it stops TERMINATED when it cleans up after an interruption, so the statuses a ResultGrid
shows then are not the ones Tune saved (RUNNING: to be resumed). A restored sweep unpickles this callback, so the
record is kept in the module, not in the instance.
"""
from __future__ import annotations

from ray import tune

from sweep.interrupt import LATEST


class TrialStatuses(tune.Callback):
    def on_step_end(self, iteration, trials, **info):
        LATEST.clear()
        LATEST.update({t.trial_id: t.status for t in trials})
