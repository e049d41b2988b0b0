"""Cranfield as domainfit sees it: a folder of documents plus human queries.

The BEIR folder in ``../shared/benchmarks/cranfield`` becomes
- ``docs/<id>.txt``: one abstract per file (the folder ``domainfit run`` adapts on);
- BEIR folders for scoring: ``dev`` / ``test`` (a fixed half of the 225 queries each,
  chosen by ``random.Random(seed)``; defaults are chosen on ``dev`` only) and ``all``;
- for the out-of-corpus setting, a random half of the documents (``half_a``) to adapt
  on and a BEIR folder ``unseen`` holding the other half with the queries that have a
  relevant document there (relevance restricted to that half).

Example::

    layout = write_cranfield(Path("runs/cranfield"))
    layout.docs, layout.beir["dev"], layout.half_a_docs
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from domainfit.artifacts import read_jsonl
from domainfit.evaluate.beir import read_qrels

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "cranfield"


@dataclass
class CranfieldLayout:
    root: Path
    docs: Path
    half_a_docs: Path
    beir: dict[str, Path] = field(default_factory=dict)
    queries_jsonl: dict[str, Path] = field(default_factory=dict)


def _positive_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Cranfield's judgements with a positive grade (the others are not relevant)."""
    judged = read_qrels(path)
    return {query_id: {doc: grade for doc, grade in docs.items() if grade > 0} for query_id, docs in judged.items()}


def _write_beir(folder: Path, corpus: list[dict], queries: list[dict], qrels: dict[str, dict[str, int]]) -> Path:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for row in corpus:
            out.write(json.dumps(row) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for row in queries:
            out.write(json.dumps({"_id": row["_id"], "text": row["text"]}) + "\n")
    with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for query in queries:
            for doc_id, score in qrels[query["_id"]].items():
                out.write(f"{query['_id']}\t{doc_id}\t{score}\n")
    return folder


def _write_queries_jsonl(path: Path, queries: list[dict], qrels: dict[str, dict[str, int]]) -> Path:
    """The ``--queries`` format: relevance by document path relative to the docs folder."""
    with path.open("w", encoding="utf-8") as out:
        for query in queries:
            relevant = [f"{doc_id}.txt" for doc_id in sorted(qrels[query["_id"]], key=int)]
            out.write(json.dumps({"query": query["text"], "relevant": relevant}) + "\n")
    return path


def write_cranfield(root: Path, source: Path = SOURCE, seed: int = 13) -> CranfieldLayout:
    corpus = read_jsonl(source / "corpus.jsonl")
    queries = read_jsonl(source / "queries.jsonl")
    qrels = _positive_qrels(source / "qrels" / "test.tsv")
    queries = [query for query in queries if qrels.get(query["_id"])]

    layout = CranfieldLayout(root=root, docs=root / "docs", half_a_docs=root / "docs_half_a")
    for folder in (layout.docs, layout.half_a_docs):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for row in corpus:
        (layout.docs / f"{row['_id']}.txt").write_text(row["text"] + "\n", encoding="utf-8")

    rng = random.Random(seed)
    shuffled = queries[:]
    rng.shuffle(shuffled)
    half = len(shuffled) // 2
    query_sets = {"dev": shuffled[:half], "test": shuffled[half:], "all": queries}
    for name, subset in query_sets.items():
        subset = sorted(subset, key=lambda row: int(row["_id"]))
        layout.beir[name] = _write_beir(root / "beir" / name, corpus, subset, qrels)
        layout.queries_jsonl[name] = _write_queries_jsonl(root / f"queries_{name}.jsonl", subset, qrels)

    doc_ids = [row["_id"] for row in corpus]
    random.Random(seed + 1).shuffle(doc_ids)
    half_a = set(doc_ids[: len(doc_ids) // 2])
    for doc_id in half_a:
        shutil.copy(layout.docs / f"{doc_id}.txt", layout.half_a_docs / f"{doc_id}.txt")
    unseen_corpus = [row for row in corpus if row["_id"] not in half_a]
    unseen_qrels = {
        query_id: {doc: score for doc, score in rels.items() if doc not in half_a} for query_id, rels in qrels.items()
    }
    unseen_queries = [query for query in queries if unseen_qrels.get(query["_id"])]
    layout.beir["unseen"] = _write_beir(root / "beir" / "unseen", unseen_corpus, unseen_queries, unseen_qrels)
    return layout


if __name__ == "__main__":
    import sys

    built = write_cranfield(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/cranfield"))
    print(built)
