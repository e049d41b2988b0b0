"""Hybrid rows: reciprocal rank fusion on hand-made rankings, and base+bm25 beside the dense rows."""

from __future__ import annotations

import numpy as np
import pytest

from domainfit.config import RunConfig
from domainfit.evaluate import MetricSpec, RetrievalTask, evaluate_task
from domainfit.evaluate.candidates import ModelSpec
from domainfit.evaluate.fusion import fuse, rrf_scores
from domainfit.evaluate.retrieval import id_ranks


def test_rrf_scores_are_sums_of_reciprocal_ranks():
    dense, lexical = np.array([[0, 1, 2]]), np.array([[2, 0, 1]])
    scores = rrf_scores([dense, lexical], 3, k=60)
    assert scores[0].tolist() == pytest.approx([1 / 61 + 1 / 62, 1 / 62 + 1 / 63, 1 / 63 + 1 / 61])
    assert fuse([dense, lexical], 3, 3, id_ranks(["a", "b", "c"]), k=60).tolist() == [[0, 2, 1]]


def test_rrf_an_entry_missing_from_one_list_and_ties_by_id():
    # depth 2: entry 3 is only in the lexical list; entries 1 and 2 tie (1/11 each) -> ascending id
    dense, lexical = np.array([[0, 1]]), np.array([[0, 2]])
    scores = rrf_scores([dense, lexical], 4, k=10)
    assert scores[0].tolist() == pytest.approx([2 / 11, 1 / 12, 1 / 12, 0.0])
    assert fuse([dense, lexical], 4, 4, id_ranks(["a", "b", "c", "d"]), k=10).tolist() == [[0, 1, 2, 3]]
    assert fuse([dense, lexical], 4, 4, id_ranks(["a", "z", "c", "d"]), k=10).tolist() == [[0, 2, 1, 3]]


CORPUS = {
    "d1": "The cat sat on the warm mat and purred softly.",
    "d2": "Stock markets fell sharply after the central bank raised interest rates.",
    "d3": "Heavy rain and thunderstorms are forecast for the weekend.",
    "d4": "The central bank kept rates unchanged, and the cat ignored it.",
}
QUERIES = {"q1": ("stock markets fell when interest rates rose", "d2"),
           "q2": ("thunderstorms forecast for the weekend", "d3"), "q3": ("a cat purred on a warm mat", "d1")}


def test_hybrid_rows_sit_beside_dense_rows_and_are_recomputed_when_parts_were_reused():
    task = RetrievalTask(list(QUERIES), [q for q, _ in QUERIES.values()], list(CORPUS), list(CORPUS.values()),
                         {qid: {doc: 1} for qid, (_, doc) in QUERIES.items()}, name="hand")
    specs = [ModelSpec("base", "minilm"), ModelSpec("bm25", "bm25")]
    plain = RunConfig.model_validate({"eval": {"dims": [384, 64], "hybrid": False}})
    without, _ = evaluate_task(task, specs, plain)
    assert set(without) == {"base", "bm25", "meta"}
    config = RunConfig.model_validate({"eval": {"dims": [384, 64]}})
    metrics, reused = evaluate_task(task, specs, config, previous=without)
    assert reused == ["base", "bm25"]  # dense and BM25 reused; fusion needed their rankings: recomputed
    assert list(metrics["base+bm25"]) == ["384", "64"] and set(metrics["base+bm25"]["64"]) == set(MetricSpec().names())
    assert metrics["meta"]["models"]["base+bm25"]["similarity"] == "rrf"
    assert metrics["meta"]["models"]["base+bm25"]["rrf_k"] == 60
    # on these easy queries both parts put the answer first, so the fusion does too
    assert metrics["base"]["384"]["mrr@10"] == metrics["bm25"]["full"]["mrr@10"] == 1.0
    assert metrics["base+bm25"]["384"]["mrr@10"] == 1.0
    other_k = RunConfig.model_validate({"eval": {"dims": [384, 64], "rrf_k": 1}})
    _, reused = evaluate_task(task, specs, other_k, previous=metrics)
    assert reused == ["base", "bm25"]  # another rrf_k is another fusion: not reused
