"""Weight-space merge of the fine-tuned model with its base model (WiSE-FT).

Fine-tuning on a few hundred LLM-written questions moves a good general model towards
the generator's habits as much as towards the domain. Averaging the fine-tuned weights
with the base weights, ``theta = (1 - r) * theta_tuned + r * theta_base``, keeps most
of the in-domain gain and much of the base model's robustness (Wortsman et al., 2022,
"Robust fine-tuning of zero-shot models"; LM-Cocktail, Xiao et al., 2023, does the same
for embedding models). ``r`` is ``train.base_merge_ratio``; its default was chosen on
Cranfield's development queries (docs/train.md), never on a test split. With
``base_merge_ratio = "auto"``, :func:`choose_merge_ratio` tries each ratio of
``train.merge_ratio_grid`` on the validation split and keeps the best. That suits a
val split like the real queries; generated val questions reward fitting the generator
and pick little or no merge, which lost on Cranfield's human queries (docs/train.md),
so "auto" is not the default.

Only floating-point tensors present in both models with the same shape are averaged;
anything else (integer buffers such as position ids) is kept from the fine-tuned model.

Example::

    merged = interpolate_state_dicts(tuned.state_dict(), base.state_dict(), base_ratio=0.5)
    tuned.load_state_dict(merged)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import torch


def interpolate_state_dicts(
    tuned: Mapping[str, "torch.Tensor"], base: Mapping[str, "torch.Tensor"], *, base_ratio: float
) -> dict[str, "torch.Tensor"]:
    """``(1 - base_ratio) * tuned + base_ratio * base`` for every float tensor the two share.

    ``base_ratio`` 0 returns the tuned weights, 1 the base weights.

    Example::

        interpolate_state_dicts({"w": torch.ones(2)}, {"w": torch.zeros(2)}, base_ratio=0.25)
        # {'w': tensor([0.7500, 0.7500])}
    """
    if not 0.0 <= base_ratio <= 1.0:
        raise ValueError(f"base_ratio must be within [0, 1], got {base_ratio}")
    merged: dict[str, "torch.Tensor"] = {}
    for name, tensor in tuned.items():
        other = base.get(name)
        if other is not None and tensor.is_floating_point() and other.shape == tensor.shape:
            base_value = other.to(device=tensor.device, dtype=tensor.dtype)
            merged[name] = tensor.lerp(base_value, base_ratio)
        else:
            merged[name] = tensor
    return merged


def merge_with_base(model, base_state: Mapping[str, "torch.Tensor"], base_ratio: float) -> int:
    """Merge ``base_state`` into ``model`` in place; returns how many tensors were averaged."""
    import torch

    if base_ratio <= 0.0:
        return 0
    with torch.no_grad():
        tuned = model.state_dict()
        merged = interpolate_state_dicts(tuned, base_state, base_ratio=base_ratio)
        model.load_state_dict(merged)
    return sum(1 for name in merged if merged[name] is not tuned[name])


def choose_merge_ratio(
    model, base_state: Mapping[str, "torch.Tensor"], ratios: Iterable[float],
    score: Callable[[object, float], float],
) -> tuple[float, dict[float, float]]:
    """Merge ``model`` in place at the ratio ``score(model, ratio)`` rates best; returns it and every ratio's score.

    The ratios are tried in ascending order (the scores dict keeps that order), and
    ``score`` is told which ratio the model is merged at, so a caller can keep more than
    the score (an evaluation, a saved copy) under that ratio. Each ratio is applied to a CPU copy of the tuned weights, so the tries do not
    compound. A tie goes to the larger ratio: closer to the base model, which is the
    safer side when the validation questions are as synthetic as the training ones.

    Example::

        ratio, scores = choose_merge_ratio(model, base_state, [0.0, 0.5], lambda m, r: evaluator(m)[metric])
    """
    import torch

    with torch.no_grad():
        tuned = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
        scores: dict[float, float] = {}
        for ratio in sorted(set(ratios)):
            model.load_state_dict(interpolate_state_dicts(tuned, base_state, base_ratio=ratio))
            scores[ratio] = float(score(model, ratio))
        best = max(scores, key=lambda ratio: (scores[ratio], ratio))
        model.load_state_dict(interpolate_state_dicts(tuned, base_state, base_ratio=best))
    return best, scores
