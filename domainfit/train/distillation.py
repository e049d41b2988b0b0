"""Distillation from the base model: keep the student's in-batch rankings close to the base's.

A few hundred generated pairs pull a good model towards the generator's wording; the
base model's own scores are a second, label-free signal. For each batch, every query is
scored against every candidate text of the batch (positives and mined negatives) by
the frozen base model at its full dim and by the student at each Matryoshka dim; the
term is the KL divergence of the student's softmax from the base's (as GPL distils a
cross-encoder's scores, with the base model as the teacher). At the full dim it
anchors the student to what the base already knew; at the small dims it teaches each
prefix to rank as the whole base embedding does. ``train.base_distillation = "auto"``
(the default) uses it for pairs synth's LLM wrote and not for a data set's own
(:func:`domainfit.train.losses.resolve_distillation`).

Example::

    loss = BaseDistillationLoss(model, build_loss(model, config, dims=dims), dims=dims, weight=1.0, scale=20.0)
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BaseDistillationLoss(nn.Module):
    """``inner`` plus ``weight`` x the base-score KL, summed over ``dims``; logged as two components.

    With a gradient-caching ranking loss (cached MNRL, the default) the term is computed
    on the very embeddings that loss caches, inside its ``calculate_loss``, so it adds
    no forward or backward pass of the student, only the teacher's forward pass. With
    another ranking loss the student embeds the batch once more for it.
    """

    def __init__(self, model, inner: nn.Module, *, dims: Sequence[int], weight: float, scale: float) -> None:
        super().__init__()
        self.model = model
        self.loss = inner
        self.teacher = _frozen_copy(model)
        self.dims = tuple(dims)
        self.weight = weight
        self.scale = scale
        self._batch_teacher: list[Tensor] = []
        self._terms: list[Tensor] = []
        cached = _gradient_cached(inner)
        self.shares_embeddings = cached is not None
        self._teacher_rows = getattr(cached, "mini_batch_size", None)
        if cached is not None:
            cached.calculate_loss = _WithDistillation(cached.calculate_loss, self)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> dict[str, Tensor]:
        inputs = list(sentence_features)  # each pass gets its own copies: the models write their outputs into them
        with torch.no_grad():
            teacher = _embed(self.teacher, [dict(features) for features in inputs], rows=self._teacher_rows)
        if self.shares_embeddings:
            self._batch_teacher, self._terms = teacher, []
            try:
                total = self.loss([dict(features) for features in inputs], labels)
            finally:
                self._batch_teacher = []
            distillation = torch.stack(self._terms).sum() if self._terms else total.new_zeros(())
            return {"ranking": total - distillation, "distillation": distillation}
        ranking = self.loss([dict(features) for features in inputs], labels)
        student = _embed(self.model, [dict(features) for features in inputs])
        return {"ranking": ranking, "distillation": self.term(student, teacher)}

    def term(self, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> Tensor:
        """``weight`` x the KL of every dim's in-batch ranking from the teacher's."""
        return self.weight * sum(in_batch_kl(student, teacher, dim=dim, scale=self.scale) for dim in self.dims)

    def train(self, mode: bool = True) -> "BaseDistillationLoss":
        super().train(mode)
        self.teacher.eval()  # the teacher's scores must not carry dropout noise
        return self

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss": type(self.loss).__name__, "dims": self.dims, "weight": self.weight, "scale": self.scale}


class _WithDistillation:
    """A gradient-caching loss's ``calculate_loss`` plus the distillation term on the same embeddings.

    The cached loss calls it with every column's embeddings, one leaf tensor per
    mini-batch, and reads their gradients as its cache; the term's gradient is added to
    that cache here, so the student's second pass (GradCache's step 3) carries both.
    The term's detached value is kept for the log.
    """

    def __init__(self, calculate_loss, owner: BaseDistillationLoss) -> None:
        self.calculate_loss = calculate_loss
        self.owner = owner

    def __call__(self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False) -> Tensor:
        ranking = self.calculate_loss(reps, labels, with_backward=with_backward)
        if not self.owner._batch_teacher:  # called outside BaseDistillationLoss.forward
            return ranking
        term = self.owner.term([torch.cat(column) for column in reps], self.owner._batch_teacher)
        if with_backward:
            term.backward()
            term = term.detach()
        self.owner._terms.append(term.detach())
        return ranking + term


def _gradient_cached(loss: nn.Module):
    """The gradient-caching loss at the core of ``loss`` (inside MatryoshkaLoss or bare), else None."""
    from sentence_transformers.base.losses.gradcache import uses_gradient_cache
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

    core = loss.loss if isinstance(loss, MatryoshkaLoss) else loss
    return core if uses_gradient_cache(core) else None


def in_batch_kl(student: Sequence[Tensor], teacher: Sequence[Tensor], *, dim: int, scale: float) -> Tensor:
    """KL(teacher || student) of each query's softmax over all candidate texts of the batch.

    ``student`` and ``teacher`` hold one embedding tensor per column (query first); the
    student is cut to its first ``dim`` values, the teacher is used whole.

    Example::

        in_batch_kl([q, p], [q, p], dim=64, scale=20.0)   # > 0 unless the prefix ranks as the whole does
    """
    student_scores = _scores([column[..., :dim] for column in student]) * scale
    teacher_scores = _scores(list(teacher)) * scale
    return F.kl_div(
        F.log_softmax(student_scores, dim=1), F.log_softmax(teacher_scores, dim=1), log_target=True, reduction="batchmean"
    )


def _scores(columns: list[Tensor]) -> Tensor:
    queries = F.normalize(columns[0], dim=-1)
    candidates = F.normalize(torch.cat(columns[1:]), dim=-1)
    return queries @ candidates.T


def _embed(model, features: list[dict[str, Tensor]], rows: int | None = None) -> list[Tensor]:
    """One embedding tensor per column; ``rows`` at a time when given (the teacher, at the cached loss's memory)."""
    return [torch.cat([model(part)["sentence_embedding"] for part in _row_slices(column, rows)]) for column in features]


def _row_slices(features: dict[str, Tensor], rows: int | None) -> list[dict[str, Tensor]]:
    size = next((len(value) for value in features.values() if isinstance(value, Tensor)), 0)
    if not rows or size <= rows:
        return [features]
    return [
        {key: value[begin : begin + rows] if isinstance(value, Tensor) else value for key, value in features.items()}
        for begin in range(0, size, rows)
    ]


def _frozen_copy(model):
    """The base model as it is now (before training), frozen: the teacher."""
    teacher = copy.deepcopy(model)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
