"""The train stage: :func:`run_training` and what it reports, :class:`TrainResult`.

torch, transformers and accelerate load only when :func:`run_training` runs
(:mod:`.trainer` imports them), so importing this module stays light.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import RunDir, StageRecord, stage_run
from ..config import RunConfig
from ..errors import ArtifactError
from ..models import enforce_offline
from ..splits import ensure_splits
from ..tracking import check_tracker
from .checks import check_training_set
from .inputs import load_training_inputs


@dataclass
class TrainResult:
    """The outcome of :func:`domainfit.train.run_training`.

    Example::

        result = run_training(RunDir("runs/demo"), cfg)
        print(result.summary())
        result.val_metrics[128]["ndcg@10"]
    """

    model_dir: Path
    base_model: str
    loss: str
    dims: list[int]
    data_counts: dict[str, int]
    batch_size: int
    mini_batch_size: int | None
    learning_rate: float
    epochs: float
    steps: int
    steps_this_run: int
    precision: str
    world_size: int = 1
    resumed_from: str | None = None
    first_loss: float | None = None
    last_loss: float | None = None
    best_metric: tuple[str, float] | None = None
    val_metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    loss_config: dict[str, Any] = field(default_factory=dict)
    base_merge_ratio: float = 0.0
    merge_ratio_scores: dict[float, float] = field(default_factory=dict)
    """Validation score of each ratio tried (``base_merge_ratio = "auto"``); empty for a fixed ratio."""
    base_distillation: float = 0.0
    distillation_chosen: bool = False
    """True when ``base_distillation = "auto"`` set the weight from ``generated_share``."""
    generated_share: float = 0.0
    """Share of the training pairs written by synth's LLM."""
    discarded_checkpoints: list[str] = field(default_factory=list)
    is_main_process: bool = True
    seconds: float = 0.0

    def counts(self) -> dict[str, Any]:
        """Counts for ``manifest.json``'s train stage: the training data's, plus the steps."""
        return {**self.data_counts, "steps": self.steps, "steps_this_run": self.steps_this_run}

    def card_info(self) -> dict[str, Any]:
        """Plain data for the model card and ``domainfit_training.json``."""
        return {
            "base_model": self.base_model,
            "loss": self.loss,
            "loss_config": self.loss_config,
            "base_merge_ratio": self.base_merge_ratio,
            "merge_ratio_scores": {f"{ratio:g}": score for ratio, score in self.merge_ratio_scores.items()},
            "base_distillation": self.base_distillation,
            "generated_share": round(self.generated_share, 4),
            "dims": self.dims,
            "counts": self.data_counts,
            "batch_size": self.batch_size,
            "mini_batch_size": self.mini_batch_size,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "steps": self.steps,
            "precision": self.precision,
            "world_size": self.world_size,
            "best_metric": list(self.best_metric) if self.best_metric else None,
            "val_metrics": {str(dim): values for dim, values in self.val_metrics.items()},
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
        }

    def summary(self) -> str:
        """What ``domainfit train`` prints."""
        counts = self.data_counts
        lines = [
            f"trained {self.base_model}: {self.loss}",
            f"  {counts.get('train_pairs', 0)} train pairs ({counts.get('pairs_with_negatives', 0)} with mined negatives), "
            f"{counts.get('val_queries', 0)} val questions over {counts.get('corpus_chunks', 0)} chunks",
            f"  batch {self.batch_size} x {self.world_size} device(s), {self.steps} steps, "
            f"{self.epochs:g} epochs, {self.precision}, {self.seconds:.1f} s",
        ]
        if self.first_loss is not None and self.last_loss is not None:
            lines.append(f"  training loss {self.first_loss:.4f} -> {self.last_loss:.4f}")
        if self.resumed_from:
            lines.append(f"  resumed from {self.resumed_from} ({self.steps_this_run} steps this run)")
        if self.discarded_checkpoints:
            lines.append(f"  discarded checkpoints of another config or cut short: {', '.join(self.discarded_checkpoints)}")
        if self.distillation_chosen:
            share = f"{self.generated_share:.0%} of the train pairs were written by the generator"
            if self.base_distillation:
                lines.append(f"  distilled from the base model (weight {self.base_distillation:g}): {share} (base_distillation = \"auto\")")
            else:
                lines.append(f"  not distilled from the base model: {share} (base_distillation = \"auto\")")
        chosen = ""
        if self.merge_ratio_scores:
            tried = ", ".join(f"{ratio:g}: {score:.4f}" for ratio, score in self.merge_ratio_scores.items())
            chosen = f"; chosen on validation from {tried}"
        if self.base_merge_ratio:
            lines.append(f"  merged with the base model: {self.base_merge_ratio:g} of its weights (WiSE-FT{chosen})")
        elif chosen:
            lines.append(f"  not merged with the base model: ratio 0 was best on validation{chosen}")
        if self.val_metrics:
            cells = " | ".join(f"{dim}: {values.get('ndcg@10', float('nan')):.4f}" for dim, values in self.val_metrics.items())
            lines.append(f"  validation ndcg@10 by dim: {cells}")
            if self.best_metric:
                lines.append(f"  best checkpoint by {self.best_metric[0]} = {self.best_metric[1]:.4f}")
        lines.append(f"  model: {self.model_dir}")
        return "\n".join(lines)


def run_training(run: RunDir, config: RunConfig, *, progress: bool = True) -> TrainResult:
    """Fine-tune ``config.base_model`` on ``run``'s training split and write ``run.model_dir``.

    Bad input (no or one training pair, triplet loss without negatives, dims larger
    than the model's, ``mini_batch_size`` above the batch, a broken triplets file)
    raises :class:`~domainfit.errors.TrainingError` before any training step.

    Example::

        result = run_training(RunDir("runs/demo"), load_config("run.toml"))
        print(result.summary())
    """
    from .trainer import distributed_state, fit

    if not run.root.is_dir():  # checked before the manifest is written: a typo must not create a run
        raise ArtifactError(f"run directory not found: {run.root} (run synth first)")
    enforce_offline(config.allow_downloads)
    check_tracker(config.train.report_to)
    state = distributed_state()
    if state.is_main_process:
        recording = stage_run(run, "train", config_hash=config.stage_hash("train"))
    else:
        recording = contextlib.nullcontext(StageRecord())
    with recording as record:
        with state.main_process_first():
            splits = ensure_splits(run, config.split)
        inputs = load_training_inputs(run, splits, config.train)
        check_training_set(inputs.train, config.train, has_triplets=inputs.has_triplets)
        result = fit(run, config, inputs, state=state, progress=progress)
        record.counts.update(result.counts())
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
