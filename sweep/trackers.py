"""The experiment trackers a sweep logs every dev evaluation to (``tune: {loggers: [...]}``), through Ray Tune's
own logger callbacks; each is an optional extra of the package:

* ``tensorboard`` (the default): tensorboardX event files in every trial's folder (Tune's TBXLoggerCallback);
  ``tensorboard --logdir TUNE_DIR`` shows them, with ``pip install 'zs-sweep[tensorboard]'``.
* ``mlflow``: one MLflow run per trial (Tune's MLflowLoggerCallback), its params and every reported metric per
  evaluation (step = the evaluation's number); the store is ``$MLFLOW_TRACKING_URI`` or a local SQLite file,
  OUT/NAME/mlflow.db, which works offline (MLflow's plain-folder store is in maintenance and refuses new use).
* ``wandb``: one W&B run per trial (Tune's WandbLoggerCallback) in project NAME, offline unless $WANDB_MODE
  says otherwise (``wandb sync OUT/NAME/wandb/offline-run-*`` uploads them later).

Without ``tensorboard`` no event files are written (Tune's own CSV and JSON result files always are).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from zs_core.errors import InputError

TRACKERS = ("tensorboard", "mlflow", "wandb")
# the module each tracker needs at run time, and the extra that installs it
NEEDS = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}


def check_trackers(loggers: tuple[str, ...], source: str) -> None:
    """Before anything starts: every tracker asked for can be imported (else one line naming the extra)."""
    for name in loggers:
        module, extra = NEEDS[name]
        if importlib.util.find_spec(module) is None:
            raise InputError(f"{source}: tune.loggers: {name} needs the {module} package: "
                             f"pip install 'zs-sweep[{extra}]'")


def mlflow_uri(out: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(out / 'mlflow.db').resolve()}"


def tracker_callbacks(loggers: tuple[str, ...], name: str, out: Path, tune_dir: str) -> tuple[list, list[str]]:
    """(Tune callbacks, lines telling the user where to look) for ``loggers``; ``tune_dir`` holds the trial
    folders (Tune's result tree), ``out`` the sweep's output folder."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    callbacks, lines = [CSVLoggerCallback(), JsonLoggerCallback()], []
    # Tune adds a TensorBoard logger of its own unless told not to: only the trackers asked for run
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    if "tensorboard" in loggers:
        from ray.tune.logger import TBXLoggerCallback

        callbacks.append(TBXLoggerCallback())
        viewer = "" if importlib.util.find_spec("tensorboard") else " (pip install 'zs-sweep[tensorboard]')"
        lines.append(f"TensorBoard: tensorboard --logdir {tune_dir}{viewer}")
    if "mlflow" in loggers:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        uri = mlflow_uri(out)
        callbacks.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=name, save_artifact=False))
        lines.append(f"MLflow: runs in {uri} (browse: pip install mlflow; mlflow ui --backend-store-uri {uri})")
    if "wandb" in loggers:
        from ray.air.integrations.wandb import WandbLoggerCallback

        mode = os.environ.get("WANDB_MODE", "offline")
        callbacks.append(WandbLoggerCallback(project=name, mode=mode, dir=str(out.resolve())))
        lines.append(f"W&B: project {name}, {mode}" + (f" (wandb sync {out}/wandb/offline-run-*)"
                                                          if mode == "offline" else ""))
    return callbacks, lines
