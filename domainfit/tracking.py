"""Experiment tracking: ``train.report_to`` for the trainers, and final metrics to the same run.

The trainers (bi-encoder and cross-encoder) hand ``report_to`` to Hugging Face's
trainer, which logs the loss and validation curves. TensorBoard writes into
``RUN/tracking/tensorboard`` (not the checkpoint folder, which is removed after
training), and eval and rerank add their final metrics to the same folder, so one
TensorBoard shows the training curves and the before/after table. MLflow, W&B and
Trackio get the training curves through the trainer; eval and rerank metrics are
written to TensorBoard only (see docs/train.md).

Example::

    report_to, callbacks = trainer_reporting("tensorboard", run)
    log_final_metrics(run, "tensorboard", {"eval/finetuned/dim_128/ndcg@10": 0.71})
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

from .artifacts import RunDir
from .errors import ConfigError

#: The package each tracker needs, as pip names it.
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb", "trackio": "trackio"}


def tensorboard_dir(run: RunDir) -> Path:
    """Where TensorBoard event files of a run go: ``tensorboard --logdir RUN/tracking``."""
    return run.tracking_dir / "tensorboard"


def check_tracker(report_to: str) -> None:
    """Fail in one line, before any work, when the tracker's package is not installed."""
    if report_to == "none":
        return
    package = TRACKER_PACKAGES[report_to]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"train.report_to = '{report_to}' needs the {package} package: pip install {package}")


def trainer_reporting(report_to: str, run: RunDir) -> tuple[str, list[Any]]:
    """``report_to`` for the training arguments and the callbacks to add to the trainer.

    TensorBoard's callback is created here so that it writes into the run's tracking
    folder (transformers 5 has no ``logging_dir`` argument; the default is inside the
    checkpoints, which are deleted).

    Example::

        report_to, callbacks = trainer_reporting("tensorboard", run)   # ('none', [TensorBoardCallback])
    """
    check_tracker(report_to)
    if report_to != "tensorboard":
        return report_to, []
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    callback.logging_dir = str(tensorboard_dir(run))
    return "none", [callback]


def flat_metrics(nested: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """``{"a": {"b": 0.5}}`` -> ``{"prefix/a/b": 0.5}``: numbers only, for a tracker's scalars.

    Example::

        flat_metrics({"finetuned": {"128": {"ndcg@10": 0.7}}}, "eval")  # {'eval/finetuned/128/ndcg@10': 0.7}
    """
    flat: dict[str, float] = {}
    for key, value in nested.items():
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            flat.update(flat_metrics(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def log_final_metrics(run: RunDir, report_to: str, metrics: Mapping[str, float], *, step: int = 0) -> bool:
    """Add final metrics to the run's tracker; returns whether anything was written.

    Only TensorBoard is written to (the folder the trainer logged to); other trackers
    keep the training curves only.
    """
    if report_to != "tensorboard" or not metrics:
        return False
    check_tracker(report_to)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tensorboard_dir(run)))
    try:
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
    finally:
        writer.close()
    return True
