"""The weight-space merge with the base model (train.base_merge_ratio)."""

import pytest
import torch

from domainfit.train.merge import choose_merge_ratio, interpolate_state_dicts, merge_with_base


def test_interpolation_moves_each_float_tensor_towards_the_base_by_the_ratio():
    tuned = {"weight": torch.tensor([1.0, 3.0]), "position_ids": torch.tensor([0, 1])}
    base = {"weight": torch.tensor([0.0, 1.0]), "position_ids": torch.tensor([5, 6])}

    merged = interpolate_state_dicts(tuned, base, base_ratio=0.25)

    assert torch.allclose(merged["weight"], torch.tensor([0.75, 2.5]))
    assert torch.equal(merged["position_ids"], torch.tensor([0, 1]))  # integer buffers are kept


def test_ratio_zero_keeps_the_tuned_model_and_one_gives_the_base():
    tuned, base = {"w": torch.tensor([2.0])}, {"w": torch.tensor([-2.0])}
    assert torch.equal(interpolate_state_dicts(tuned, base, base_ratio=0.0)["w"], tuned["w"])
    assert torch.equal(interpolate_state_dicts(tuned, base, base_ratio=1.0)["w"], base["w"])


def test_tensors_missing_or_reshaped_in_the_base_are_left_alone():
    tuned = {"head": torch.ones(3), "extra": torch.ones(1)}
    merged = interpolate_state_dicts(tuned, {"head": torch.zeros(4)}, base_ratio=0.5)
    assert torch.equal(merged["head"], torch.ones(3)) and torch.equal(merged["extra"], torch.ones(1))


def test_a_ratio_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="within"):
        interpolate_state_dicts({}, {}, base_ratio=1.5)


def test_merge_with_base_updates_a_module_in_place():
    tuned, base = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = (tuned.weight.detach() + base.weight.detach()) / 2
    base_state = {name: value.clone() for name, value in base.state_dict().items()}

    assert merge_with_base(tuned, base_state, 0.5) == 2
    assert torch.allclose(tuned.weight, expected)


def _one_weight(value: float) -> torch.nn.Module:
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(value)
    return module


def test_auto_keeps_the_ratio_validation_likes_best_and_tries_each_from_the_tuned_weights():
    tuned, base_state = _one_weight(1.0), _one_weight(0.0).state_dict()
    tried = []

    def closeness_to_0_6(model, ratio: float) -> float:  # validation "likes" a weight of 0.6
        tried.append((ratio, round(model.weight.item(), 4)))
        return -abs(model.weight.item() - 0.6)

    ratio, scores = choose_merge_ratio(tuned, base_state, [0.75, 0.0, 0.5, 0.25], closeness_to_0_6)

    assert ratio == 0.5 and list(scores) == [0.0, 0.25, 0.5, 0.75]
    assert tried == [(0.0, 1.0), (0.25, 0.75), (0.5, 0.5), (0.75, 0.25)]  # each ratio from the tuned weights, not from the previous try
    assert tuned.weight.item() == pytest.approx(0.5)  # the module is left merged at the chosen ratio


def test_auto_breaks_a_tie_towards_the_base_model():
    tuned, base_state = _one_weight(1.0), _one_weight(0.0).state_dict()
    ratio, _ = choose_merge_ratio(tuned, base_state, [0.0, 0.5], lambda model, ratio: 0.3)
    assert ratio == 0.5 and tuned.weight.item() == pytest.approx(0.5)
