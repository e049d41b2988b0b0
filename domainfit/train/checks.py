"""Up-front checks: every problem that would break training, found before it starts.

A training run can take hours; a bad input should cost seconds. These pure functions
raise :class:`~domainfit.errors.TrainingError` with one line naming the key, file or
count to fix.

Example::

    check_training_set(train, cfg.train, has_triplets=run.triplets.exists())
    check_model_fit(cfg.train, model_dim=384, dims=[384, 256, 128, 64], batch_size=64, mini_batch_size=32)
"""

from __future__ import annotations

from typing import Sequence

from ..config import TrainConfig
from ..errors import TrainingError
from .data import TrainingSet


def check_training_set(train: TrainingSet, config: TrainConfig, *, has_triplets: bool) -> None:
    """The rows can train ``config.loss``: at least two of them, no missing values.

    Example::

        check_training_set(train, TrainConfig(loss="triplet"), has_triplets=False)  # TrainingError
    """
    if config.loss == "triplet" and not train.rows:
        if not has_triplets:
            raise TrainingError(
                "train.loss = 'triplet' needs mined negatives, and there is no triplets.parquet: "
                "run `domainfit mine` first (or use loss 'mnrl' / 'cached-mnrl')"
            )
        if not config.use_negatives or config.negatives_per_pair == 0:
            raise TrainingError("train.loss = 'triplet' needs negatives: set train.use_negatives = true, negatives_per_pair >= 1")
        raise TrainingError(
            f"train.loss = 'triplet' but none of the {train.n_pairs} training pairs has a usable mined negative"
        )
    if train.n_rows == 0:
        raise TrainingError("the training split has no pairs: synthesize more pairs or accept more in review")
    if train.n_rows == 1:
        raise TrainingError("the training split has 1 pair; contrastive training needs at least 2")
    for column in train.columns:
        checked = train.rows + [row for row in train.short_rows if column in row]
        missing = sum(1 for row in checked if not isinstance(row.get(column), str) or not row[column].strip())
        if missing:
            raise TrainingError(f"training column '{column}' has {missing} missing value(s) of {len(checked)} rows")


def check_model_fit(
    config: TrainConfig,
    *,
    model_dim: int,
    dims: Sequence[int],
    batch_size: int,
    mini_batch_size: int,
) -> None:
    """The settings fit the model and each other: dims, batch sizes, hub id.

    Example::

        check_model_fit(TrainConfig(matryoshka_dims=[512]), model_dim=384, dims=[512],
                        batch_size=32, mini_batch_size=32)   # TrainingError
    """
    too_large = [dim for dim in dims if dim > model_dim]
    if too_large:
        raise TrainingError(
            f"train.matryoshka_dims {sorted(too_large, reverse=True)} exceed the model's {model_dim} dims"
        )
    if config.loss == "cached-mnrl" and mini_batch_size > batch_size:
        raise TrainingError(
            f"train.mini_batch_size ({mini_batch_size}) is larger than train.batch_size ({batch_size})"
        )
    if config.push_to_hub and not config.hub_model_id:
        raise TrainingError("train.push_to_hub needs train.hub_model_id (e.g. 'your-name/your-model')")
