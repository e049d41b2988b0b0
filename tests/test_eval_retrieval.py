"""BM25 and dense retrieval on a hand-made corpus: ranks and metrics known in advance."""

from __future__ import annotations

import math

import pytest

from domainfit.config import RunConfig
from domainfit.evaluate import MetricSpec, RetrievalTask, evaluate_dense, evaluate_task
from domainfit.evaluate.candidates import load_dense
from domainfit.evaluate.engine import evaluate_bm25
from domainfit.evaluate.bm25 import BM25Retriever
from domainfit.evaluate.retrieval import id_ranks
from domainfit.evaluate.stage import ModelSpec

CORPUS = {
    "d1": "The cat sat on the warm mat and purred softly.",
    "d2": "Stock markets fell sharply after the central bank raised interest rates.",
    "d3": "Heavy rain and thunderstorms are forecast for the weekend.",
}


def hand_task(queries: dict[str, tuple[str, str]]) -> RetrievalTask:
    return RetrievalTask(
        query_ids=list(queries),
        queries=[text for text, _ in queries.values()],
        corpus_ids=list(CORPUS),
        corpus=list(CORPUS.values()),
        relevant={qid: {doc: 1} for qid, (_, doc) in queries.items()},
        name="hand",
    )


@pytest.fixture(scope="module")
def minilm():
    return load_dense("minilm")


def test_bm25_ranks_by_shared_words_then_by_id():
    # q1 shares 'stock' with d2 only; q2 shares 'cat' and 'mat' with d1 but only 'rain' with d3
    task = hand_task({"q1": ("Why did the stock market drop?", "d2"), "q2": ("A cat on a mat in the rain", "d3")})
    ranked = BM25Retriever(task.corpus).top_k(task.queries, 3, corpus_rank=id_ranks(task.corpus_ids))
    assert [[task.corpus_ids[i] for i in row] for row in ranked] == [["d2", "d1", "d3"], ["d1", "d3", "d2"]]

    metrics = evaluate_bm25(task, MetricSpec()).metrics["full"]
    assert metrics["accuracy@1"] == 0.5 and metrics["accuracy@3"] == 1.0
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert metrics["precision@3"] == pytest.approx(1 / 3) and metrics["recall@3"] == 1.0


def test_bm25_query_without_known_words_scores_zero_everywhere():
    task = hand_task({"q1": ("zzz qqq", "d3")})
    ranked = BM25Retriever(task.corpus).top_k(task.queries, 3, corpus_rank=id_ranks(task.corpus_ids))
    assert [task.corpus_ids[i] for i in ranked[0]] == ["d1", "d2", "d3"]  # all tied: by id


def test_dense_finds_the_obvious_answers_at_every_dim(minilm):
    task = hand_task({"q1": ("Why did share prices drop?", "d2"), "q2": ("Will there be storms on Saturday?", "d3")})
    result = evaluate_dense(minilm, task, [384, 128], MetricSpec())
    assert list(result.metrics) == ["384", "128"]
    for dim in ("384", "128"):
        metrics = result.metrics[dim]
        assert metrics["accuracy@1"] == 1.0 and metrics["mrr@10"] == 1.0 and metrics["ndcg@10"] == 1.0
        assert metrics["precision@3"] == pytest.approx(1 / 3) and metrics["map@100"] == 1.0
    assert result.latency_ms["128"]["encode"] > 0 and result.model_dim == 384


def test_evaluate_task_nests_label_dim_metric(minilm):
    task = hand_task({"q1": ("Why did share prices drop?", "d2")})
    config = RunConfig.model_validate({"eval": {"dims": [384, 64]}})
    metrics, reused = evaluate_task(task, [ModelSpec("base", "minilm"), ModelSpec("bm25", "bm25")], config)
    assert set(metrics) == {"base", "bm25", "base+bm25", "meta"} and reused == []
    assert list(metrics["base"]) == ["384", "64"] and list(metrics["bm25"]) == ["full"]
    assert set(metrics["base"]["64"]) == set(MetricSpec().names())
    assert metrics["meta"]["bytes_per_vector"] == {"384": 1536, "64": 256}
    again, reused = evaluate_task(task, [ModelSpec("base", "minilm"), ModelSpec("bm25", "bm25")], config,
                                  previous=metrics)
    assert reused == ["base", "bm25", "base+bm25"] and again["base"] == metrics["base"]
    assert again["base+bm25"] == metrics["base+bm25"] and list(metrics["base+bm25"]) == ["384", "64"]
