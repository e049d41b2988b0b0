"""train: fine-tune with triplet, MNRL or CachedMNRL inside MatryoshkaLoss.

``run_training(run, config)`` reads the run's training split (reviewed pairs, plus
mined negatives from ``triplets.parquet`` when it exists), validates on the val
split at every Matryoshka dim, keeps the best checkpoint, and writes a
sentence-transformers model with a model card to ``RUN/model``. A killed run
resumes from its last complete checkpoint when started again; the same call runs
under ``torchrun`` / ``accelerate launch`` on many GPUs (only rank 0 writes).

Example::

    cfg = load_config(overrides={"train.loss": "mnrl", "train.epochs": 1})
    result = run_training(RunDir("runs/demo"), cfg)
    SentenceTransformer(str(result.model_dir), truncate_dim=128)
"""

from __future__ import annotations

import contextlib

from ..artifacts import RunDir, StageRecord, stage_run
from ..config import RunConfig
from ..errors import ArtifactError
from ..models import resolve_matryoshka_dims
from .args import auto_batch_size, training_precision, validation_metric
from .checks import check_model_fit, check_training_set
from .data import TrainingSet, ValidationSet, build_training_set, build_validation_set, negatives_by_pair
from .losses import build_loss
from .result import TrainResult

__all__ = [
    "TrainResult",
    "TrainingSet",
    "ValidationSet",
    "auto_batch_size",
    "build_loss",
    "build_training_set",
    "build_validation_set",
    "check_model_fit",
    "check_training_set",
    "negatives_by_pair",
    "resolve_matryoshka_dims",
    "run_training",
    "training_precision",
    "validation_metric",
]


def run_training(run: RunDir, config: RunConfig, *, progress: bool = True) -> TrainResult:
    """Fine-tune ``config.base_model`` on ``run``'s training split and write ``run.model_dir``.

    Bad input (no or one training pair, triplet loss without negatives, dims larger
    than the model's, ``mini_batch_size`` above the batch, a broken triplets file)
    raises :class:`~domainfit.errors.TrainingError` before any training step.

    Example::

        result = run_training(RunDir("runs/demo"), load_config("run.toml"))
        print(result.summary())
    """
    from ..models import enforce_offline
    from ..splits import ensure_splits
    from ..tracking import check_tracker
    from .inputs import load_training_inputs
    from .trainer import distributed_state, fit

    if not run.root.is_dir():  # checked before the manifest is written: a typo must not create a run
        raise ArtifactError(f"run directory not found: {run.root} (run synth first)")
    enforce_offline(config.allow_downloads)
    check_tracker(config.train.report_to)
    state = distributed_state()
    if state.is_main_process:
        recording = stage_run(run, "train", config_hash=config.section_hash("train"))
    else:
        recording = contextlib.nullcontext(StageRecord())
    with recording as record:
        with state.main_process_first():
            splits = ensure_splits(run, config.split)
        inputs = load_training_inputs(run, splits, config.train)
        check_training_set(inputs.train, config.train, has_triplets=inputs.has_triplets)
        result = fit(run, config, inputs, state=state, progress=progress)
        record.counts.update(result.manifest_counts())
        record.details.update(
            {
                "loss": result.loss,
                "dims": result.dims,
                "batch_size": result.batch_size,
                "precision": result.precision,
                "world_size": result.world_size,
                "resumed_from": result.resumed_from,
                "best_metric": list(result.best_metric) if result.best_metric else None,
                "val_ndcg_at_10": {str(dim): m.get("ndcg@10") for dim, m in result.val_metrics.items()},
                "review": inputs.review_counts,
            }
        )
    return result
