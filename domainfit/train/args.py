"""Training arguments from a :class:`~domainfit.config.TrainConfig`: pure functions.

Everything here maps config and facts about the machine (is CUDA there, does it do
bf16, how many processes) to keyword arguments of
``SentenceTransformerTrainingArguments``, so each rule is testable on a CPU.

Example::

    kwargs = training_arguments(cfg.train, output_dir="runs/x/checkpoints", batch_size=64,
                                has_val=True, metric="eval_dim_128_cosine_ndcg@10",
                                precision=training_precision(cfg.train, False, False))
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ..config import IR_CUTOFFS, TrainConfig
from ..errors import TrainingError

#: The validation evaluator's metrics and their cut-offs (``config.IR_CUTOFFS``), by metric name.
VALIDATION_CUTOFFS = {
    "accuracy": IR_CUTOFFS["accuracy_at_k"],
    "precision": IR_CUTOFFS["precision_recall_at_k"],
    "recall": IR_CUTOFFS["precision_recall_at_k"],
    "mrr": IR_CUTOFFS["mrr_at_k"],
    "ndcg": IR_CUTOFFS["ndcg_at_k"],
    "map": IR_CUTOFFS["map_at_k"],
}
AUTO_BATCH_MIN, AUTO_BATCH_MAX, AUTO_STEPS_PER_EPOCH = 16, 128, 16
DEFAULT_MINI_BATCH = 32


def training_precision(config: TrainConfig, cuda_available: bool, bf16_supported: bool) -> dict[str, Any]:
    """Mixed-precision and optimizer arguments for this machine.

    ``auto``: bf16 + tf32 + fused AdamW on a CUDA GPU with bf16 (Ampere and newer);
    fp16 + fused AdamW on an older CUDA GPU; fp32 + plain AdamW on CPU. Asking for
    fp16 without CUDA, or bf16 on a CUDA GPU without it, is a :class:`TrainingError`.

    Example::

        training_precision(TrainConfig(), cuda_available=False, bf16_supported=False)
        # {'bf16': False, 'fp16': False, 'optim': 'adamw_torch'}
    """
    precision = config.precision
    if precision == "auto":
        precision = ("bf16" if bf16_supported else "fp16") if cuda_available else "fp32"
    if precision == "fp16" and not cuda_available:
        raise TrainingError("train.precision = 'fp16' needs a CUDA GPU; use 'auto' or 'fp32' on CPU")
    if precision == "bf16" and cuda_available and not bf16_supported:
        raise TrainingError("train.precision = 'bf16' but this GPU has no bf16; use 'auto' (fp16) or 'fp32'")
    kwargs: dict[str, Any] = {
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "optim": "adamw_torch_fused" if cuda_available else "adamw_torch",
    }
    if precision == "bf16" and cuda_available:
        kwargs["tf32"] = True
    return kwargs


def auto_batch_size(n_rows: int) -> int:
    """Default batch: a power of two giving ~16+ steps an epoch, within 16..128.

    Larger batches give MNRL more in-batch negatives, but a small domain set also
    needs enough optimizer steps; 128 is reached from 2,048 rows on.

    Example::

        auto_batch_size(100), auto_batch_size(1000), auto_batch_size(10_000)   # (16, 32, 128)
    """
    target = max(1, n_rows // AUTO_STEPS_PER_EPOCH)
    power = 1 << (target.bit_length() - 1)
    return max(AUTO_BATCH_MIN, min(AUTO_BATCH_MAX, power))


def resolve_batch_sizes(config: TrainConfig, n_rows: int) -> tuple[int, int]:
    """(batch_size, mini_batch_size): the config's, or the automatic ones.

    Example::

        resolve_batch_sizes(TrainConfig(batch_size=64), 500)   # (64, 32)
    """
    batch = config.batch_size or auto_batch_size(n_rows)
    mini = config.mini_batch_size or min(DEFAULT_MINI_BATCH, batch)
    return batch, mini


def evaluator_names(dims: Sequence[int], model_dim: int) -> list[tuple[str, int]]:
    """(name, truncate_dim) of each validation evaluator: one per trained dim.

    Example::

        evaluator_names([384, 128], 384)   # [('dim_384', 384), ('dim_128', 128)]
    """
    return [(f"dim_{dim}", dim) for dim in (dims or [model_dim])]


def validation_metric(requested: str | None, dims: Sequence[int], model_dim: int, similarity: str) -> str:
    """The ``metric_for_best_model`` key the trainer compares, e.g. ``eval_dim_128_cosine_ndcg@10``.

    Unset means NDCG@10 at the middle trained dim. ``requested`` may be a full key
    (``dim_64_cosine_mrr@10``, with or without ``eval_``) or a bare metric
    (``mrr@10``, taken at the middle dim). An unknown key is a :class:`TrainingError`.

    Example::

        validation_metric(None, [384, 256, 128, 64], 384, "cosine")   # 'eval_dim_128_cosine_ndcg@10'
    """
    names = [name for name, _ in evaluator_names(dims, model_dim)]
    middle = names[len(names) // 2]
    known = {
        f"{name}_{similarity}_{metric}@{k}" for name in names for metric, ks in VALIDATION_CUTOFFS.items() for k in ks
    }
    if requested is None:
        return f"eval_{middle}_{similarity}_ndcg@10"
    key = requested.removeprefix("eval_")
    if re.fullmatch(r"[a-z]+@\d+", key):
        key = f"{middle}_{similarity}_{key}"
    if key not in known:
        examples = ", ".join(sorted(known)[:3])
        raise TrainingError(
            f"train.metric_for_best_model {requested!r} is not a validation metric; e.g. {examples} or ndcg@10"
        )
    return f"eval_{key}"


def schedule_arguments(config: TrainConfig, *, has_val: bool, metric: str | None) -> dict[str, Any]:
    """When to validate and checkpoint, and whether the best checkpoint is kept.

    With a validation split: validate every epoch (or every ``eval_steps`` /
    ``save_steps``), checkpoint at each validation, load the best one at the end.
    Without one: checkpoint every epoch (or ``save_steps``) and keep the last model.

    Example::

        schedule_arguments(TrainConfig(save_steps=50), has_val=True, metric="eval_dim_128_cosine_ndcg@10")
    """
    validate = has_val and config.eval_strategy != "no"
    if not validate:
        save = {"save_strategy": "steps", "save_steps": config.save_steps} if config.save_steps else {
            "save_strategy": "epoch"
        }
        return {"eval_strategy": "no", "load_best_model_at_end": False, **save}
    if config.eval_strategy == "steps" or config.save_steps:
        eval_steps = config.eval_steps or config.save_steps
        if eval_steps is None:
            raise TrainingError("train.eval_strategy = 'steps' needs train.eval_steps (or train.save_steps)")
        save_steps = config.save_steps or eval_steps
        if save_steps % eval_steps:
            raise TrainingError(
                f"train.save_steps ({save_steps}) must be a multiple of train.eval_steps ({eval_steps}) "
                "so that the best checkpoint exists"
            )
        timing = {"eval_strategy": "steps", "eval_steps": eval_steps, "save_strategy": "steps", "save_steps": save_steps}
    else:
        timing = {"eval_strategy": "epoch", "save_strategy": "epoch"}
    return {**timing, "load_best_model_at_end": True, "metric_for_best_model": metric, "greater_is_better": True}


def training_arguments(
    config: TrainConfig,
    *,
    output_dir: str,
    batch_size: int,
    has_val: bool,
    metric: str | None,
    precision: dict[str, Any],
    world_size: int = 1,
    cuda_available: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """All keyword arguments of ``SentenceTransformerTrainingArguments`` for one run.

    Example::

        args = SentenceTransformerTrainingArguments(**training_arguments(cfg.train, output_dir=..., ...))
    """
    kwargs: dict[str, Any] = {
        "output_dir": output_dir,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": batch_size,
        "per_device_eval_batch_size": batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "lr_scheduler_type": config.lr_scheduler,
        "batch_sampler": "no_duplicates",
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_total_limit": config.save_total_limit,
        "report_to": "none",
        "disable_tqdm": not progress,
        "ddp_find_unused_parameters": False,
        **_warmup(config.warmup_ratio),
        **schedule_arguments(config, has_val=has_val, metric=metric),
        **precision,
    }
    if not cuda_available:
        kwargs["use_cpu"] = True
    if world_size > 1:
        kwargs["dataloader_drop_last"] = True
        if not cuda_available:
            kwargs["ddp_backend"] = "gloo"
    return kwargs


def _warmup(ratio: float) -> dict[str, Any]:
    """transformers 5 takes a float ``warmup_steps`` as a ratio; 4.x still has ``warmup_ratio``."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"warmup_steps": float(ratio)}
    return {"warmup_ratio": ratio}
