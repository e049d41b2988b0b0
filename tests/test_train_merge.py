"""The weight-space merge with the base model (train.base_merge_ratio)."""

import pytest
import torch

from domainfit.train.merge import interpolate_state_dicts, merge_with_base


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
