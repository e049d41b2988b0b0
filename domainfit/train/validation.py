"""Validation at every Matryoshka dim, with the corpus encoded once per evaluation.

One sentence-transformers ``InformationRetrievalEvaluator`` per dim (``truncate_dim``),
in a :class:`MatryoshkaValidation` — a ``SequentialEvaluator`` that encodes the corpus
once with the largest dim's evaluator and hands each evaluator its prefix of those
embeddings. Cosine scores renormalise, so a prefix of the full embedding ranks
exactly like encoding with ``truncate_dim``: same metrics, same key names
(``dim_128_cosine_ndcg@10``), a quarter of the encoding for four dims.

Example::

    evaluator = build_evaluator(val, dims=[384, 256, 128, 64], model_dim=384)
    metrics = evaluator(model)          # {'dim_384_cosine_ndcg@10': ..., ...}
"""

from __future__ import annotations

from typing import Sequence

from sentence_transformers.sentence_transformer.evaluation import (
    InformationRetrievalEvaluator,
    SequentialEvaluator,
)

from ..config import IR_CUTOFFS
from .args import evaluator_names
from .data import ValidationSet


class MatryoshkaValidation(SequentialEvaluator):
    """Per-dim InformationRetrievalEvaluators (largest dim first) sharing one encoding of the corpus."""

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        largest = self.evaluators[0]
        corpus_embeddings = largest.embed_inputs(
            model,
            largest.corpus,
            encode_fn_name="document",
            prompt_name=largest.corpus_prompt_name,
            prompt=largest.corpus_prompt,
        )
        results: dict = {}
        scores = []
        for evaluator in self.evaluators:
            metrics = evaluator(
                model, output_path, epoch, steps, corpus_embeddings=corpus_embeddings[:, : evaluator.truncate_dim]
            )
            results.update(metrics)
            scores.append(metrics[evaluator.primary_metric])
        self.primary_metric = "sequential_score"
        results["sequential_score"] = self.main_score_function(scores)
        return results


def build_evaluator(
    val: ValidationSet, dims: Sequence[int], model_dim: int, *, batch_size: int = 32
) -> MatryoshkaValidation:
    """One InformationRetrievalEvaluator per dim (``dim_<d>``), in a :class:`MatryoshkaValidation`."""
    cutoffs = {name: list(ks) for name, ks in IR_CUTOFFS.items()}
    names = sorted(evaluator_names(dims, model_dim), key=lambda item: -item[1])
    return MatryoshkaValidation(
        [
            InformationRetrievalEvaluator(
                val.queries, val.corpus, val.relevant, name=name, truncate_dim=dim, batch_size=batch_size, **cutoffs
            )
            for name, dim in names
        ]
    )
