"""The training loss: triplet, MNRL or cached MNRL, inside MatryoshkaLoss.

+-------------+---------------------------------------+-------------------------------------------+
| ``loss``    | sentence-transformers class           | what it optimises                         |
+=============+=======================================+===========================================+
| mnrl        | MultipleNegativesRankingLoss          | softmax over the batch's positives (and   |
|             |                                       | the mined negatives): InfoNCE             |
+-------------+---------------------------------------+-------------------------------------------+
| cached-mnrl | CachedMultipleNegativesRankingLoss    | the same, over a batch of any size at the |
|             |                                       | memory of ``mini_batch_size`` (GradCache) |
+-------------+---------------------------------------+-------------------------------------------+
| triplet     | TripletLoss                           | max(d(a,p) - d(a,n) + margin, 0)          |
+-------------+---------------------------------------+-------------------------------------------+

Each is wrapped in MatryoshkaLoss over the resolved dims (see
:func:`domainfit.models.resolve_matryoshka_dims`), so every prefix of the embedding is trained to
retrieve on its own. Gradient accumulation does not enlarge MNRL's in-batch
negatives; ``cached-mnrl`` with a larger ``batch_size`` does. With
``train.base_distillation`` the whole is wrapped once more, in
:class:`domainfit.train.distillation.BaseDistillationLoss`, which adds a term keeping the
student's in-batch scores close to the base model's. Its default, ``"auto"``, is
resolved against the training pairs first (:func:`resolve_distillation`).

Example::

    dims = models.resolve_matryoshka_dims(384, None)   # [384, 256, 128, 64]
    settings = resolve_distillation(config.train, generated_share=1.0)
    loss = build_loss(model, settings, dims=dims, mini_batch_size=32)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..config import TrainConfig
from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

#: The weight ``base_distillation = "auto"`` gives pairs written by synth's LLM. Chosen on
#: Cranfield's human dev queries (docs/train.md); on a data set's own pairs the legal
#: set's val split scored lower with it at every dim, so "auto" leaves it off there.
AUTO_DISTILLATION_WEIGHT = 1.0


def resolve_distillation(config: TrainConfig, *, generated_share: float) -> TrainConfig:
    """``config`` with ``base_distillation = "auto"`` made a number for these training pairs.

    ``generated_share`` is the share of training pairs written by synth's LLM (see
    :func:`domainfit.train.inputs.written_by_generator`): at least half, and the base
    model is distilled from at :data:`AUTO_DISTILLATION_WEIGHT`; fewer, and it is off.
    A number is kept as it is.

    Example::

        resolve_distillation(TrainConfig(), generated_share=1.0).base_distillation   # 1.0
    """
    if config.base_distillation != "auto":
        return config
    weight = AUTO_DISTILLATION_WEIGHT if generated_share >= 0.5 else 0.0
    return config.model_copy(update={"base_distillation": weight})


def _distillation_weight(config: TrainConfig) -> float:
    if config.base_distillation == "auto":
        raise ConfigError('train.base_distillation = "auto" must be resolved against the pairs first (resolve_distillation)')
    return float(config.base_distillation)


def build_loss(
    model,
    config: TrainConfig,
    *,
    dims: Sequence[int],
    mini_batch_size: int = 32,
    distributed: bool = False,
    show_progress_bar: bool = False,
) -> "nn.Module":
    """The loss module ``config.loss`` names, wrapped in MatryoshkaLoss when ``dims``.

    ``distributed`` turns on ``gather_across_devices`` for the MNRL losses (when
    ``config.gather_across_devices``), so each GPU's queries are ranked against every
    GPU's documents: the in-batch negatives grow with the number of devices.

    Example::

        loss = build_loss(model, TrainConfig(loss="mnrl", base_distillation=0), dims=[384, 128])
    """
    from sentence_transformers.sentence_transformer import losses

    gather = bool(distributed and config.gather_across_devices)
    if config.loss == "mnrl":
        inner = losses.MultipleNegativesRankingLoss(model, scale=config.scale, gather_across_devices=gather)
    elif config.loss == "cached-mnrl":
        inner = losses.CachedMultipleNegativesRankingLoss(
            model,
            scale=config.scale,
            mini_batch_size=mini_batch_size,
            gather_across_devices=gather,
            show_progress_bar=show_progress_bar,
        )
    elif config.loss == "triplet":
        distance = {
            "cosine": losses.TripletDistanceMetric.COSINE,
            "euclidean": losses.TripletDistanceMetric.EUCLIDEAN,
            "manhattan": losses.TripletDistanceMetric.MANHATTAN,
        }[config.triplet_distance]
        inner = losses.TripletLoss(model, distance_metric=distance, triplet_margin=config.triplet_margin)
    else:  # pragma: no cover - the config's Literal forbids it
        raise ValueError(f"unknown loss {config.loss!r}")
    if dims:
        inner = losses.MatryoshkaLoss(model, inner, matryoshka_dims=list(dims))
    weight = _distillation_weight(config)
    if not weight:
        return inner
    from .distillation import BaseDistillationLoss

    return BaseDistillationLoss(
        model,
        inner,
        dims=list(dims) or [model.get_embedding_dimension()],
        weight=weight,
        scale=config.scale,
    )


_WRAPPERS = ("BaseDistillationLoss", "MatryoshkaLoss")  # losses around the ranking loss, by class name


def inner_loss_config(loss) -> dict:
    """The configuration of the loss inside MatryoshkaLoss (or of ``loss`` itself), as plain data.

    Example::

        inner_loss_config(build_loss(model, TrainConfig(base_distillation=0), dims=[384]))["mini_batch_size"]   # 32
    """
    inner = loss
    while type(inner).__name__ in _WRAPPERS:
        inner = inner.loss
    config = inner.get_config_dict() if hasattr(inner, "get_config_dict") else {}
    return {"name": type(inner).__name__, **{key: _plain(value) for key, value in config.items()}}


def _plain(value):
    return value if isinstance(value, (bool, int, float, str, type(None))) else str(value)


def loss_description(config: TrainConfig, dims: Sequence[int], n_negatives: int) -> str:
    """One line for summaries and the model card, e.g. ``CachedMNRL (1 mined negative) in Matryoshka [384, 128]``.

    Example::

        loss_description(TrainConfig(base_distillation=0), [384, 256], 1)
    """
    name = {
        "mnrl": "MultipleNegativesRankingLoss",
        "cached-mnrl": "CachedMultipleNegativesRankingLoss",
        "triplet": f"TripletLoss ({config.triplet_distance}, margin {config.triplet_margin})",
    }[config.loss]
    if config.loss != "triplet":
        plural = "" if n_negatives == 1 else "s"
        name += f" (scale {config.scale:g}, {n_negatives} mined negative{plural} per pair)"
    if dims:
        name = f"MatryoshkaLoss {list(dims)} over {name}"
    weight = _distillation_weight(config)
    if weight:
        name += f", plus {weight:g} x distillation from the base model's in-batch scores"
    return name
