"""The Tune callback of interruptions and resumes.

It keeps every trial's status after each step of Tune's loop in sweep.interrupt.LATEST: Tune marks the trials it
stops TERMINATED when it cleans up after an interruption, so the statuses a ResultGrid shows then are not the ones
Tune saved (RUNNING: to be resumed). And it lets a trial whose latest checkpoint is gone be restored (below).
A restored sweep unpickles this callback by its class name, so a sweep started by an older version gets the
methods of today's, and the record is kept in the module, not in the instance.
"""
from __future__ import annotations

import sys

import pyarrow.fs
from ray import tune

from sweep.interrupt import LATEST


class TrialStatuses(tune.Callback):
    def on_step_end(self, iteration, trials, **info):
        LATEST.clear()
        LATEST.update({t.trial_id: t.status for t in trials})

    def on_trial_start(self, iteration, trials, trial, **info):
        """Before Tune restores ``trial`` from the latest checkpoint its saved state names: when that folder is gone
        (Tune deletes the previous latest once a newer one is logged, and saves its state only with a new best, so
        a driver killed in between leaves a name without a folder), Tune fails the trial, its retry, and every
        --resume. An empty folder in its place lets it start; sweep.trial.resume_point then goes on from the
        trial's next whole checkpoint, else an earlier one, else the start."""
        result = trial.latest_checkpoint_result
        checkpoint = result.checkpoint if result is not None else None
        if checkpoint is None:
            return
        fs, path = checkpoint.filesystem, checkpoint.path
        if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
            print(f"{trial.trial_id}: its latest checkpoint {path} is gone; it goes on from the newest whole one left",
                  file=sys.stderr, flush=True)
            fs.create_dir(path)
