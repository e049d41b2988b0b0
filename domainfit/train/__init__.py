"""train: fine-tune with triplet, MNRL or CachedMNRL inside MatryoshkaLoss.

``run_training(run, config)`` reads the run's training split (reviewed pairs, plus
mined negatives from ``triplets.parquet`` when it exists), validates on the val
split at every Matryoshka dim, keeps the best checkpoint, and writes a
sentence-transformers model with a model card to ``RUN/model``. A killed run
resumes from its last complete checkpoint when started again; the same call runs
under ``torchrun`` / ``accelerate launch`` on many GPUs (only rank 0 writes).

Example::

    cfg = load_config(overrides={"train.loss": "mnrl", "train.epochs": 1})
    result = run_training(RunDir("runs/demo"), cfg)
    SentenceTransformer(str(result.model_dir), truncate_dim=128)
"""

from .data import build_training_set
from .losses import build_loss
from .stage import TrainResult, run_training

__all__ = [
    "TrainResult",
    "build_loss",
    "build_training_set",
    "run_training",
]
