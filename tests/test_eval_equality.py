"""domainfit's metrics equal sentence-transformers' InformationRetrievalEvaluator(truncate_dim=d).

The packaged MiniLM on the ``tiny_run`` fixture's held-out queries (against their
chunks and some others, to stay fast), with a few chunks copied under new ids so that
exact score ties and shared relevance are exercised.
"""

from __future__ import annotations

import pytest
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from domainfit.artifacts import read_chunks
from domainfit.config import SplitConfig
from domainfit.evaluate import MetricSpec, evaluate_dense, task_from_pairs
from domainfit.evaluate.candidates import load_dense
from domainfit.splits import ensure_splits
from domainfit.review import reviewed_pairs

DIMS = [384, 128, 32]


def test_metrics_equal_information_retrieval_evaluator_at_every_dim(tiny_run):
    model = load_dense("minilm")
    pairs, _ = reviewed_pairs(tiny_run)
    chunks = read_chunks(tiny_run.chunks)
    splits = ensure_splits(tiny_run, SplitConfig())
    by_id = {pair.pair_id: pair for pair in pairs}
    test_pairs = [by_id[pid] for pid in splits.test][:12]  # each evaluator call re-encodes: stay small
    test_chunks = {pair.chunk_id for pair in test_pairs}
    copies = [
        chunk.model_copy(update={"chunk_id": prefix + chunk.chunk_id})
        for prefix, chunk in zip(("0copy-", "zcopy-", "0copy-"), [c for c in chunks if c.chunk_id in test_chunks])
    ]
    others = [chunk for chunk in chunks if chunk.chunk_id not in test_chunks][:12]  # keeps the test fast
    task = task_from_pairs(test_pairs, [c for c in chunks if c.chunk_id in test_chunks] + others + copies)
    assert task.details["duplicate_relevant"] >= 3  # the copies are relevant too

    ours = evaluate_dense(model, task, DIMS, MetricSpec(), batch_size=32).metrics
    for dim in DIMS:
        evaluator = InformationRetrievalEvaluator(
            queries=dict(zip(task.query_ids, task.queries)),
            corpus=dict(zip(task.corpus_ids, task.corpus)),
            relevant_docs=task.relevant_sets(),
            truncate_dim=dim,
            batch_size=32,
        )
        theirs = evaluator(model)
        assert set(ours[str(dim)]) == {key.removeprefix("cosine_") for key in theirs}
        for name, value in ours[str(dim)].items():
            assert value == pytest.approx(theirs[f"cosine_{name}"], abs=1e-6), (dim, name)
