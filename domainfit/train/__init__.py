"""train: fine-tune with triplet, MNRL or CachedMNRL inside MatryoshkaLoss."""

from ..errors import StageNotBuiltError


def run_training(*args, **kwargs):
    raise StageNotBuiltError("train is not built yet")
