"""Run sentence-transformers' trainer on prepared inputs, resume, and write the model.

It holds the training loop's setup (the other train modules prepare data and
arguments, and validation builds the evaluator). It loads the base model, checks the settings against it, builds loss, validation evaluator and
training arguments, resumes from the last complete checkpoint, trains, and (on the
main process only) writes ``RUN/model`` atomically with its model card.

The same code runs in one process or under ``torchrun`` / ``accelerate launch``:
accelerate's ``PartialState`` knows the rank, the main process makes the splits and
prepares the checkpoint folder first, and only it writes files.

Example::

    state = distributed_state()
    result = fit(run, cfg, inputs, state=state)
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..artifacts import RunDir, json_hash, replace_dir, write_json, write_jsonl
from ..config import RunConfig
from ..errors import TrainingError, first_line
from ..models import ALIASES, embedding_dim, load_model, resolve_matryoshka_dims
from ..tracking import trainer_reporting
from .args import (
    evaluator_names,
    resolve_batch_sizes,
    training_arguments,
    training_precision,
    validation_metric,
)
from .card import append_card_section, card_section
from .checkpoints import last_complete_checkpoint, prepare_checkpoints
from .checks import check_model_fit
from .data import to_datasets
from .validation import build_evaluator
from .inputs import TrainingInputs
from .losses import build_loss, inner_loss_config, loss_description, resolve_distillation
from .merge import choose_merge_ratio, merge_with_base
from .progress import ReadableProgress, main_metric_name, quiet_library_bars
from .stage import TrainResult

#: train.* keys that do not change the trained weights: changing them keeps checkpoints.
_NOT_IN_FINGERPRINT = (
    "keep_checkpoints", "push_to_hub", "hub_model_id", "logging_steps", "save_total_limit", "report_to"
)
CARD_METRICS = ("ndcg@10", "mrr@10", "accuracy@1", "recall@10")


def distributed_state():
    """accelerate's process state: rank, world size, barriers (one process when not launched).

    Without CUDA it must be told it runs on CPU, or under torchrun it would not see the
    gloo process group as distributed (and not share validation metrics across ranks).
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def training_fingerprint(config: RunConfig, inputs: TrainingInputs) -> dict[str, str]:
    """What a checkpoint must match to be resumed: the training config and the data."""
    settings = config.model_dump(mode="json")["train"]
    for key in _NOT_IN_FINGERPRINT:
        settings.pop(key, None)
    settings["base_model"] = config.base_model
    return {"config": json_hash(settings), "inputs": inputs.fingerprint()}


def freeze_unused_parameters(model) -> list[str]:
    """Stop training parameters no embedding depends on; returns their names.

    BERT-style backbones carry a pooler head that mean pooling never uses. Under DDP
    with ``find_unused_parameters=False`` (the fast setting) a parameter that gets no
    gradient is an error, so one probe forward/backward finds them and they are frozen:
    they could not change the embeddings anyway.
    """
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    features = model.preprocess(["a probe sentence", "another one"])
    features = {key: value.to(model.device) if hasattr(value, "to") else value for key, value in features.items()}
    model(features)["sentence_embedding"].sum().backward()
    unused = [name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None]
    for name, parameter in model.named_parameters():
        if name in unused:
            parameter.requires_grad_(False)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return unused


@dataclass
class _Plan:
    """What the settings come to for this model on this machine, decided before training starts."""

    model_dim: int
    dims: list[int]
    batch_size: int
    mini_batch_size: int
    precision: dict[str, bool]
    cuda: bool
    has_val: bool
    similarity: str
    metric: str | None
    world_size: int


def fit(run: RunDir, config: RunConfig, inputs: TrainingInputs, *, state, progress: bool = True) -> TrainResult:
    """Train ``config.base_model`` on ``inputs`` and write ``run.model_dir``; see the module doc."""
    started = time.perf_counter()
    config_distillation = config.train.base_distillation
    train_settings = resolve_distillation(config.train, generated_share=inputs.generated_share)
    config = config.model_copy(update={"train": train_settings})
    model = load_model(config.base_model, allow_downloads=config.allow_downloads)
    if config.train.max_seq_length:
        model.max_seq_length = config.train.max_seq_length
    plan = _plan(model, config, inputs, state)
    _describe_base_model(model, config.base_model)
    if plan.world_size > 1:
        freeze_unused_parameters(model)
    loss = build_loss(
        model, config.train, dims=plan.dims, mini_batch_size=plan.mini_batch_size, distributed=plan.world_size > 1
    )
    discarded: list[str] = []
    if state.is_main_process:
        discarded = prepare_checkpoints(run.checkpoints_dir, training_fingerprint(config, inputs))
    state.wait_for_everyone()
    resume = last_complete_checkpoint(run.checkpoints_dir)
    resumed_step = _global_step(resume) if resume else 0  # read now: the trainer may rotate that checkpoint out
    trainer = _trainer(model, loss, run, config, inputs, plan, progress)
    base_state = _base_weights(model, loss) if config.train.base_merge_ratio != 0 else None
    _readable_output(trainer, run, metric=main_metric_name(plan.metric), similarity=plan.similarity, progress=progress)
    with quiet_library_bars():
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    best = _best_evaluation(trainer.state.log_history, plan.metric)
    merge = _Merge(ratio=0.0)
    if base_state is not None:
        merge = _merge(trainer, base_state, config.train, plan)
        best = merge.evaluation or best
    result = _result(trainer, loss, run, config, inputs, plan, best=best, resume=resume, resumed_step=resumed_step)
    result.base_merge_ratio, result.merge_ratio_scores = merge.ratio, merge.scores
    result.base_distillation, result.generated_share = float(train_settings.base_distillation), inputs.generated_share
    result.distillation_chosen = config_distillation == "auto"
    result.discarded_checkpoints = discarded
    result.is_main_process = state.is_main_process
    if state.is_main_process:
        _write_outputs(trainer, run, config.train, result)
    state.wait_for_everyone()
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _plan(model, config: RunConfig, inputs: TrainingInputs, state) -> _Plan:
    """Dims, batch sizes, precision and the validation metric; bad settings fail here, before any step."""
    import torch

    settings = config.train
    model_dim = embedding_dim(model)
    dims = resolve_matryoshka_dims(model_dim, settings.matryoshka_dims)
    batch_size, mini_batch_size = resolve_batch_sizes(settings, inputs.train.n_rows)
    check_model_fit(settings, model_dim=model_dim, dims=dims, batch_size=batch_size, mini_batch_size=mini_batch_size)
    cuda = torch.cuda.is_available()
    has_val = bool(inputs.val) and settings.eval_strategy != "no"
    similarity = model.similarity_fn_name or "cosine"
    return _Plan(
        model_dim=model_dim,
        dims=dims,
        batch_size=batch_size,
        mini_batch_size=mini_batch_size,
        precision=training_precision(settings, cuda, cuda and torch.cuda.is_bf16_supported()),
        cuda=cuda,
        has_val=has_val,
        similarity=similarity,
        metric=validation_metric(settings.metric_for_best_model, dims, model_dim, similarity) if has_val else None,
        world_size=state.num_processes,
    )


def _trainer(model, loss, run: RunDir, config: RunConfig, inputs: TrainingInputs, plan: _Plan, progress: bool):
    """sentence-transformers' trainer with our arguments, validation evaluator and tracking callbacks."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    evaluator = (
        build_evaluator(inputs.val, plan.dims, plan.model_dim, batch_size=config.eval.batch_size)
        if plan.has_val
        else None
    )
    arguments = training_arguments(
        config.train,
        output_dir=str(run.checkpoints_dir),
        batch_size=plan.batch_size,
        has_val=plan.has_val,
        metric=plan.metric,
        precision=plan.precision,
        world_size=plan.world_size,
        cuda_available=plan.cuda,
        progress=progress,
    )
    arguments["report_to"], callbacks = trainer_reporting(config.train.report_to, run)
    arguments["run_name"] = run.root.name
    return SentenceTransformerTrainer(
        model=model,
        args=SentenceTransformerTrainingArguments(**arguments),
        train_dataset=to_datasets(inputs.train),
        loss=loss,
        evaluator=evaluator,
        callbacks=callbacks,
    )


def _result(
    trainer, loss, run: RunDir, config: RunConfig, inputs: TrainingInputs, plan: _Plan, *,
    best: dict[str, Any] | None, resume: Path | None, resumed_step: int,
) -> TrainResult:
    """What the training did, from the trainer's state and log; ``best`` is the kept validation entry."""
    settings = config.train
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    precision = plan.precision
    return TrainResult(
        model_dir=run.model_dir,
        base_model=config.base_model,
        loss=loss_description(settings, plan.dims, inputs.train.n_negatives),
        dims=plan.dims,
        data_counts=inputs.counts(),
        batch_size=plan.batch_size,
        mini_batch_size=plan.mini_batch_size if settings.loss == "cached-mnrl" else None,
        learning_rate=settings.learning_rate,
        epochs=round(float(trainer.state.epoch or 0), 3),
        steps=trainer.state.global_step,
        resumed_from=resume.name if resume else None,
        steps_this_run=trainer.state.global_step - resumed_step,
        precision="bf16" if precision["bf16"] else "fp16" if precision["fp16"] else "fp32",
        world_size=plan.world_size,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        best_metric=(plan.metric, float(best[plan.metric])) if best and plan.metric else None,
        val_metrics=_metrics_by_dim(best, plan.dims, plan.model_dim, plan.similarity) if best else {},
        loss_config=inner_loss_config(loss),
    )


@dataclass
class _Merge:
    """The WiSE-FT merge as done: its ratio, each tried ratio's validation score, the kept model's evaluation."""

    ratio: float
    scores: dict[float, float] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None


def _merge(trainer, base_state: dict, settings, plan: _Plan) -> _Merge:
    """Merge the trained model with its base at ``base_merge_ratio``, or at the best of the grid on validation."""
    evaluator = trainer.evaluator

    def evaluate(model) -> dict[str, Any]:
        return {f"eval_{name}": value for name, value in evaluator(model).items()}

    if settings.base_merge_ratio == "auto" and evaluator is not None and plan.metric:
        evaluations: dict[float, dict[str, Any]] = {}

        def score(model, ratio: float) -> float:
            evaluations[ratio] = evaluate(model)
            return float(evaluations[ratio][plan.metric])

        ratio, scores = choose_merge_ratio(trainer.model, base_state, settings.merge_ratio_grid, score)
        return _Merge(ratio=ratio, scores=scores, evaluation=evaluations[ratio])
    ratio = max(settings.merge_ratio_grid) if settings.base_merge_ratio == "auto" else settings.base_merge_ratio
    merge_with_base(trainer.model, base_state, ratio)
    return _Merge(ratio=ratio, evaluation=evaluate(trainer.model) if evaluator is not None else None)


def _base_weights(model, loss) -> dict:
    """The weights before training, which the WiSE-FT merge averages back in.

    With distillation the loss already holds them, frozen, as its teacher; otherwise
    they are copied to CPU, so the base model is never held twice.
    """
    teacher = getattr(loss, "teacher", None)
    if teacher is not None:
        return teacher.state_dict()
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}


def _readable_output(trainer, run: RunDir, *, metric: str, similarity: str, progress: bool) -> None:
    """Swap the trainer's raw-dict printing for one bar and one line per validation (see progress.py)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    trainer.add_callback(ReadableProgress(run.root / "logs" / "train.log", metric=metric, similarity=similarity, progress=progress))


def _write_outputs(trainer, run: RunDir, settings, result: TrainResult) -> None:
    """The main process's files: the model with its card, the training log; checkpoints and hub as configured."""
    with quiet_library_bars():
        save_model(trainer.model, run.model_dir, result)
    write_jsonl(run.root / "train_log.jsonl", trainer.state.log_history)
    if not settings.keep_checkpoints:
        shutil.rmtree(run.checkpoints_dir, ignore_errors=True)
    if settings.push_to_hub:
        _push_to_hub(trainer.model, settings.hub_model_id)


def save_model(model, target: Path, result: TrainResult) -> None:
    """Write the model with its card to ``target`` atomically: a temp folder renamed into place.

    A reader sees the old model or the new one, never half of one; the old one is
    removed only after the new one is in place.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        model.save_pretrained(str(staging))
        append_card_section(staging / "README.md", card_section(result.card_info()))
        write_json(staging / "domainfit_training.json", result.card_info())
        replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _describe_base_model(model, name: str) -> None:
    """Offline, sentence-transformers cannot look the base model up; tell its card the hub id we know."""
    hub_id = ALIASES.get(name.lower()) or (name if re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not Path(name).exists() else None)
    card_data = getattr(model, "model_card_data", None)
    if hub_id and card_data is not None and not getattr(card_data, "base_model", None):
        card_data.base_model = hub_id


def _global_step(checkpoint: Path) -> int:
    try:
        return int(json.loads((checkpoint / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        return 0


def _best_evaluation(history: list[dict[str, Any]], metric: str | None) -> dict[str, Any] | None:
    """The validation log entry the trainer kept: the first with the highest ``metric``."""
    if metric is None:
        return None
    evaluations = [entry for entry in history if isinstance(entry.get(metric), (int, float))]
    if not evaluations:
        return None
    best = evaluations[0]
    for entry in evaluations[1:]:
        if entry[metric] > best[metric]:
            best = entry
    return best


def _metrics_by_dim(
    entry: dict[str, Any], dims: Sequence[int], model_dim: int, similarity: str
) -> dict[int, dict[str, float]]:
    """``{384: {'ndcg@10': .., ...}, ...}`` from one validation log entry."""
    table: dict[int, dict[str, float]] = {}
    for name, dim in evaluator_names(dims, model_dim):
        prefix = f"eval_{name}_{similarity}_"
        values = {metric: float(entry[prefix + metric]) for metric in CARD_METRICS if prefix + metric in entry}
        if values and all(math.isfinite(value) for value in values.values()):
            table[dim] = values
    return table


def _push_to_hub(model, repo_id: str | None) -> None:
    """Push the final model (needs network and a token; not exercised offline)."""
    try:
        model.push_to_hub(repo_id)
    except Exception as error:  # the hub client raises many types; the user needs one line
        raise TrainingError(f"push to the hub as {repo_id} failed: {first_line(error)}") from None
