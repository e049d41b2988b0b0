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
    """``inner`` plus ``weight`` x the base-score KL, summed over ``dims``; logged as two components."""

    def __init__(self, model, inner: nn.Module, *, dims: Sequence[int], weight: float, scale: float) -> None:
        super().__init__()
        self.model = model
        self.loss = inner
        self.teacher = _frozen_copy(model)
        self.dims = tuple(dims)
        self.weight = weight
        self.scale = scale

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> dict[str, Tensor]:
        inputs = list(sentence_features)  # each pass gets its own copies: the models write their outputs into them
        ranking = self.loss([dict(features) for features in inputs], labels)
        with torch.no_grad():
            teacher = _embed(self.teacher, [dict(features) for features in inputs])
        student = _embed(self.model, [dict(features) for features in inputs])
        distillation = sum(in_batch_kl(student, teacher, dim=dim, scale=self.scale) for dim in self.dims)
        return {"ranking": ranking, "distillation": self.weight * distillation}

    def train(self, mode: bool = True) -> "BaseDistillationLoss":
        super().train(mode)
        self.teacher.eval()  # the teacher's scores must not carry dropout noise
        return self

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss": type(self.loss).__name__, "dims": self.dims, "weight": self.weight, "scale": self.scale}


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


def _embed(model, features: list[dict[str, Tensor]]) -> list[Tensor]:
    return [model(column)["sentence_embedding"] for column in features]


def _frozen_copy(model):
    """The base model as it is now (before training), frozen: the teacher."""
    teacher = copy.deepcopy(model)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
