"""Retrieval metrics and exact ranking, without a model: by hand and against
sentence-transformers' own ``compute_metrics`` on random scores full of ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from domainfit.evaluate.metrics import MetricSpec, retrieval_metrics
from domainfit.evaluate.retrieval import id_ranks, rank_all, rank_block, relevance_matrix

SPEC = MetricSpec(accuracy_at_k=(1, 3), precision_recall_at_k=(1, 3), mrr_at_k=(10,), ndcg_at_k=(3,), map_at_k=(3,))


def test_metrics_by_hand():
    # query A: one relevant entry, found at rank 2; query B: two relevant, found at ranks 1 and 3
    hits = np.array([[False, True, False], [True, False, True]])
    scores = retrieval_metrics(hits, np.array([1, 2]), SPEC)
    assert list(scores) == SPEC.names()
    assert scores["accuracy@1"] == 0.5 and scores["accuracy@3"] == 1.0
    assert scores["precision@1"] == 0.5 and scores["precision@3"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert scores["recall@1"] == pytest.approx((0 + 1 / 2) / 2) and scores["recall@3"] == 1.0
    assert scores["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    ndcg_a = (1 / math.log2(3)) / 1
    ndcg_b = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert scores["ndcg@3"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    # MAP@3 divides by min(k, relevant): A = (1/2)/1, B = (1/1 + 2/3)/2
    assert scores["map@3"] == pytest.approx((1 / 2 + (1 + 2 / 3) / 2) / 2)


def test_precision_divides_by_k_when_fewer_results_exist():
    scores = retrieval_metrics(np.array([[True, False]]), np.array([1]), SPEC)
    assert scores["precision@3"] == pytest.approx(1 / 3)
    assert scores["ndcg@3"] == 1.0


def test_graded_ndcg_uses_grades_as_linear_gains():
    # grades: entry 0 -> 3, entry 1 -> 1; ranked [1, 0]
    grades = np.array([[1.0, 3.0]])
    ideal = np.array([[3.0, 1.0]])
    scores = retrieval_metrics(grades > 0, np.array([2]), SPEC, gains=grades, ideal_gains=ideal)
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert scores["graded_ndcg@3"] == pytest.approx(expected)
    assert scores["ndcg@3"] == 1.0  # binary: both relevant entries are in the top 3


def test_a_query_without_relevant_entries_is_refused():
    with pytest.raises(ValueError):
        retrieval_metrics(np.zeros((1, 3), dtype=bool), np.array([0]), SPEC)


def test_ties_break_by_ascending_corpus_id_as_strings():
    ids = ["d10", "d2", "d1", "d3"]  # string order: d1 < d10 < d2 < d3
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.9]])
    ranked = rank_block(scores, 3, id_ranks(ids))
    assert [ids[i] for i in ranked[0]] == ["d3", "d1", "d10"]


def test_relevance_matrix_reads_grades_by_corpus_index():
    ranked = np.array([[2, 0, 1], [1, 2, 0]])
    grades, n_relevant = relevance_matrix(ranked, [{0: 2}, {2: 1, 0: 3}], 3)
    assert grades.tolist() == [[0, 2, 0], [0, 1, 3]]
    assert n_relevant.tolist() == [1, 2]


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    n_queries, n_corpus = int(rng.integers(3, 12)), int(rng.integers(2, 40))
    corpus_ids = [f"d{int(i)}" for i in rng.permutation(n_corpus)]
    # scores rounded to one decimal: many exact ties, also at the top-k boundary
    scores = np.round(rng.uniform(-1, 1, size=(n_queries, n_corpus)), 1).astype(np.float32)
    relevant = {
        f"q{q}": set(rng.choice(corpus_ids, size=int(rng.integers(1, min(6, n_corpus) + 1)), replace=False))
        for q in range(n_queries)
    }
    return corpus_ids, scores, relevant


@pytest.mark.parametrize("seed", range(8))
def test_equal_to_sentence_transformers_compute_metrics_with_ties(seed):
    corpus_ids, scores, relevant = _random_case(seed)
    spec = MetricSpec(accuracy_at_k=(1, 3, 5), precision_recall_at_k=(1, 3, 5, 10), mrr_at_k=(5, 10),
                      ndcg_at_k=(3, 10), map_at_k=(5, 100))
    query_ids = list(relevant)
    evaluator = InformationRetrievalEvaluator(
        queries={qid: qid for qid in query_ids},
        corpus={cid: cid for cid in corpus_ids},
        relevant_docs=relevant,
        accuracy_at_k=list(spec.accuracy_at_k),
        precision_recall_at_k=list(spec.precision_recall_at_k),
        mrr_at_k=list(spec.mrr_at_k),
        ndcg_at_k=list(spec.ndcg_at_k),
        map_at_k=list(spec.map_at_k),
    )
    results = [
        [{"corpus_id": cid, "score": float(score)} for cid, score in zip(corpus_ids, row)] for row in scores
    ]
    theirs = evaluator.compute_metrics(results)

    ranked = rank_all(lambda a, b: torch.from_numpy(scores[a:b]), len(query_ids), len(corpus_ids),
                      spec.max_k, id_ranks(corpus_ids), budget_mb=1e-9)  # one query per block
    position = {cid: i for i, cid in enumerate(corpus_ids)}
    grades, n_relevant = relevance_matrix(
        ranked, [{position[cid]: 1 for cid in relevant[qid]} for qid in query_ids], len(corpus_ids)
    )
    ours = retrieval_metrics(grades > 0, n_relevant, spec)
    for name, value in ours.items():
        family, k = name.split("@")
        assert value == pytest.approx(float(theirs[f"{family}@k"][int(k)]), abs=1e-12), name


def test_block_size_does_not_change_the_ranking():
    corpus_ids, scores, _ = _random_case(3)
    ranks = id_ranks(corpus_ids)
    one_block = rank_all(lambda a, b: torch.from_numpy(scores[a:b]), len(scores), len(corpus_ids), 7, ranks)
    per_query = rank_all(lambda a, b: torch.from_numpy(scores[a:b]), len(scores), len(corpus_ids), 7, ranks,
                         budget_mb=1e-9)
    assert np.array_equal(one_block, per_query)
