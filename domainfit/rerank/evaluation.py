"""Two-stage retrieval on held-out questions: a bi-encoder's top k, then a cross-encoder.

Each bi-encoder (base, fine-tuned) encodes the corpus once and retrieves its top
``k`` per question; each cross-encoder (the base re-ranker when there is a trained
one, and the fine-tuned one) re-scores those ``k`` chunks. Every ranking is scored
with sentence-transformers' ``InformationRetrievalEvaluator.compute_metrics``, the
same NDCG@10 / MRR@10 as the dense rows of ``eval/metrics.json``. Time per question
counts query encoding and search (dense) and the ``k`` cross-encoder passes (rerank);
corpus encoding is paid once at indexing and not counted.

Real queries are judged by document: :func:`pool_by_document` turns a ranking of
chunks into one of documents, each at its best chunk's score (as eval's max-pooling).

Example::

    candidates, ms = dense_candidates(bi_encoder, queries, corpus, k=50)
    reranked, rerank_ms = rerank_candidates(cross_encoder, queries, corpus, candidates)
    ranking_metrics(queries, corpus, relevant, reranked)    # {'ndcg@10': .., 'mrr@10': ..}
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

from ..config import EncodeConfig

Ranking = dict[str, list[tuple[str, float]]]  # query id -> [(chunk id, score)], best first


def dense_candidates(
    model, queries: Mapping[str, str], corpus: Mapping[str, str], *, k: int, batch_size: int = 32,
    encode_settings: EncodeConfig | None = None,
) -> tuple[Ranking, float]:
    """Top-``k`` chunks per query by cosine, and the milliseconds per query (encode + search).

    ``model`` is a SentenceTransformer or a :class:`~domainfit.vectors.ModelVectors`
    (texts its cache holds are not encoded again; a cached query counts the encode time
    measured when it was encoded). A corpus to encode goes as ``encode_settings`` (or the
    ModelVectors' settings) say; queries in this process (timed).
    """
    import torch
    from sentence_transformers.util import semantic_search

    from ..encoding import unit_rows
    from ..vectors import ModelVectors, VectorCache

    vectors = model if isinstance(model, ModelVectors) else ModelVectors(
        VectorCache.disabled(), model=model, batch_size=batch_size, settings=encode_settings)
    corpus_ids, query_ids = list(corpus), list(queries)
    try:
        corpus_vectors = unit_rows(vectors.encode([corpus[cid] for cid in corpus_ids], "document"))
        query_vectors = unit_rows(vectors.encode([queries[qid] for qid in query_ids], "query"))
        encode_ms = vectors.cache.last_ms_per_text
    finally:
        if vectors is not model:
            vectors.close()
    started = time.perf_counter()
    device = vectors.model.device if vectors.model_loaded else "cpu"
    hits = semantic_search(torch.from_numpy(query_vectors).to(device), torch.from_numpy(corpus_vectors).to(device),
                           top_k=min(k, len(corpus_ids)))
    ms = encode_ms + (time.perf_counter() - started) * 1000 / max(1, len(query_ids))
    ranking = {qid: [(corpus_ids[hit["corpus_id"]], float(hit["score"])) for hit in found]
               for qid, found in zip(query_ids, hits)}
    return ranking, ms


def rerank_candidates(
    cross_encoder, queries: Mapping[str, str], corpus: Mapping[str, str], candidates: Ranking, *,
    batch_size: int = 32,
) -> tuple[Ranking, float]:
    """The candidates re-scored by ``cross_encoder`` (one batched predict), and milliseconds per query."""
    order = [(qid, cid) for qid in queries for cid, _ in candidates[qid]]
    started = time.perf_counter()
    scores = cross_encoder.predict([(queries[qid], corpus[cid]) for qid, cid in order], batch_size=batch_size,
                                   convert_to_numpy=True, show_progress_bar=False) if order else []
    ms = (time.perf_counter() - started) * 1000 / max(1, len(queries))
    ranking: Ranking = {qid: [] for qid in queries}
    for (qid, cid), score in zip(order, scores):
        ranking[qid].append((cid, float(score)))
    for found in ranking.values():
        found.sort(key=lambda item: (-item[1], item[0]))
    return ranking, ms


def pool_by_document(ranking: Ranking, document_of: Mapping[str, str]) -> Ranking:
    """Each query's chunks -> their documents, each once at its best chunk's score, best first.

    Only the retrieved chunks take part: a document none of whose chunks is in a
    query's top k is not ranked for it (as a re-ranker never sees it).
    """
    pooled: Ranking = {}
    for qid, found in ranking.items():
        best: dict[str, float] = {}
        for cid, score in found:
            doc = document_of[cid]
            if doc not in best or score > best[doc]:
                best[doc] = score
        pooled[qid] = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return pooled


def ranking_metrics(
    queries: Mapping[str, str], corpus: Mapping[str, str], relevant: Mapping[str, set[str]], ranking: Ranking,
    *, cutoffs: Sequence[int] = (10,),
) -> dict[str, float]:
    """NDCG@k and MRR@k of ``ranking`` as sentence-transformers' IR evaluator computes them."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    evaluator = InformationRetrievalEvaluator(
        dict(queries), dict(corpus), {qid: set(ids) for qid, ids in relevant.items()},
        mrr_at_k=list(cutoffs), ndcg_at_k=list(cutoffs), accuracy_at_k=[1], precision_recall_at_k=[1],
        map_at_k=[max(cutoffs)], write_csv=False,
    )
    results = [[{"corpus_id": cid, "score": score} for cid, score in ranking[qid]] for qid in evaluator.queries_ids]
    computed = evaluator.compute_metrics(results)
    metrics = {}
    for k in cutoffs:
        metrics[f"ndcg@{k}"] = round(float(computed["ndcg@k"][k]), 4)
        metrics[f"mrr@{k}"] = round(float(computed["mrr@k"][k]), 4)
    return metrics
