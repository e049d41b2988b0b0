"""Fine-tune a cross-encoder with sentence-transformers' ``CrossEncoderTrainer``.

The one module of :mod:`domainfit.rerank` that trains: it builds the loss named by
the (chosen) loss, validates on the val split's retrieved candidates with
``CrossEncoderRerankingEvaluator`` after each epoch, keeps the best checkpoint by its
NDCG@10, and saves a model that loads with plain ``CrossEncoder(path)``.

Example::

    model = fit_cross_encoder(location, rows, loss="bce", settings=cfg.rerank, output_dir=run.root / "rerank_checkpoints")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..config import RerankConfig

VALIDATION_NAME = "val"


def build_loss(model, loss: str):
    """BinaryCrossEntropyLoss, LambdaLoss or MultipleNegativesRankingLoss for ``model``."""
    from sentence_transformers.cross_encoder import losses

    if loss == "bce":
        return losses.BinaryCrossEntropyLoss(model)
    if loss == "lambda":
        return losses.LambdaLoss(model)
    return losses.MultipleNegativesRankingLoss(model)


def fit_cross_encoder(
    location: str,
    rows: Sequence[dict[str, Any]],
    *,
    loss: str,
    settings: RerankConfig,
    output_dir: Path,
    fresh_head: bool,
    validation_samples: list[dict[str, Any]] | None = None,
    report_to: str = "none",
    callbacks: list[Any] | None = None,
    run_name: str | None = None,
    progress: bool = True,
):
    """Train a cross-encoder from ``location`` on ``rows``; returns (model, trainer log history)."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    model = CrossEncoder(location, num_labels=1 if fresh_head else None, max_length=settings.max_length)
    dataset = Dataset.from_list(list(rows))
    evaluator = None
    if validation_samples:
        evaluator = CrossEncoderRerankingEvaluator(
            validation_samples, at_k=10, always_rerank_positives=False, name=VALIDATION_NAME,
            batch_size=settings.predict_batch_size, write_csv=False,
        )
    validate = evaluator is not None
    cuda = torch.cuda.is_available()
    arguments = CrossEncoderTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=float(settings.warmup_ratio),
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        eval_strategy="epoch" if validate else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=validate,
        metric_for_best_model=f"eval_{VALIDATION_NAME}_ndcg@10" if validate else None,
        greater_is_better=True,
        report_to=report_to,
        run_name=run_name,
        disable_tqdm=not progress,
        use_cpu=not cuda,
        bf16=bool(cuda and torch.cuda.is_bf16_supported()),
    )
    trainer = CrossEncoderTrainer(
        model=model, args=arguments, train_dataset=dataset, loss=build_loss(model, loss), evaluator=evaluator,
        callbacks=callbacks or None,
    )
    trainer.train()
    return trainer.model, trainer.state.log_history
