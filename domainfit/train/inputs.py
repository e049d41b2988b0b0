"""Read what training needs from a run directory (the IO edge of :mod:`domainfit.train`).

Pairs come from :func:`domainfit.review.reviewed_pairs` (review decisions applied),
restricted to the split's train and val ids; chunk texts from ``chunks.parquet``;
mined negatives from ``triplets.parquet`` when it exists. ``generated_share`` says how
many of the training pairs synth's LLM wrote, which ``base_distillation = "auto"`` reads.

Example::

    inputs = load_training_inputs(run, splits, cfg.train)
    inputs.train.counts(), len(inputs.val.queries), inputs.generated_share
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..artifacts import Pair, RunDir, content_hash, read_chunks
from ..config import TrainConfig
from ..review import reviewed_pairs
from ..splits import Splits
from ..triplets import read_negatives
from .data import TrainingSet, ValidationSet, build_training_set, build_validation_set


@dataclass
class TrainingInputs:
    """Rows to train on, the validation set, and where they came from."""

    train: TrainingSet
    val: ValidationSet
    has_triplets: bool
    review_counts: dict[str, int]
    generated_share: float = 0.0
    """Share of the training pairs written by synth's LLM (:func:`written_by_generator`)."""

    def counts(self) -> dict[str, int]:
        return {
            **self.train.counts(),
            "val_queries": len(self.val.queries),
            "corpus_chunks": len(self.val.corpus),
        }

    def fingerprint(self) -> str:
        """A hash of exactly what is trained and validated on: resume only onto the same data."""
        payload = json.dumps(
            [self.train.columns, self.train.rows, self.train.short_rows, sorted(self.val.queries.items())],
            sort_keys=True,
            ensure_ascii=False,
        )
        return content_hash(payload)


def written_by_generator(pair: Pair) -> bool:
    """Was this question written by synth's LLM from a prompt, and not rewritten by a person?

    synth records the prompt in ``pair.generator`` (``prompt_style``); a data set's own
    pairs, or pairs a user brings, carry no prompt. A question edited on the review
    page is a person's words.
    """
    return "prompt_style" in pair.generator and not pair.checks.get("edited")


def load_training_inputs(run: RunDir, splits: Splits, config: TrainConfig) -> TrainingInputs:
    """Build the training and validation sets of ``run`` for ``config.loss``."""
    pairs, review = reviewed_pairs(run)
    by_id = {pair.pair_id: pair for pair in pairs}
    train_pairs = [by_id[pid] for pid in dict.fromkeys(splits.train) if pid in by_id]
    val_pairs = [by_id[pid] for pid in dict.fromkeys(splits.val) if pid in by_id]
    chunks = read_chunks(run.chunks)
    has_triplets = run.triplets.exists()
    negatives = read_negatives(run) if has_triplets and config.use_negatives else None
    train = build_training_set(
        train_pairs,
        {chunk.chunk_id: chunk.text for chunk in chunks},
        negatives,
        loss=config.loss,
        negatives_per_pair=config.negatives_per_pair,
        use_negatives=config.use_negatives,
    )
    return TrainingInputs(
        train=train,
        val=build_validation_set(val_pairs, chunks),
        has_triplets=has_triplets,
        review_counts=review.counts(),
        generated_share=sum(map(written_by_generator, train_pairs)) / len(train_pairs) if train_pairs else 0.0,
    )
