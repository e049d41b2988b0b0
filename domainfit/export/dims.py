"""Which dims a model can be exported at: its full dim and the dims it was trained at."""

from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError


def check_export_dim(dim: int | None, model_dim: int, trained_dims: Sequence[int]) -> int:
    """The dim to export at; a dim the model was not trained to serve is a one-line error.

    A Matryoshka-trained model serves each of its ``trained_dims`` (and its full dim);
    any other prefix of its vector was never trained to retrieve on its own.

    Example::

        check_export_dim(128, 384, [384, 256, 128, 64])   # 128
        check_export_dim(None, 384, [])                    # 384
    """
    if dim is None:
        return model_dim
    if dim > model_dim:
        raise ConfigError(f"--dim {dim} is above the model's dim {model_dim}")
    allowed = sorted({model_dim, *trained_dims}, reverse=True)
    if dim not in allowed:
        listed = ", ".join(str(value) for value in allowed)
        raise ConfigError(f"--dim {dim} is not one of the model's Matryoshka dims ({listed})")
    return dim
