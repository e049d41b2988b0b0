"""Real queries judged by document: the pure scoring core on hand-made numbers, the
queries file's one-line errors, and `run_evaluation(queries=...)` / `domainfit eval
RUN --queries FILE` on a small real run with the packaged MiniLM."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import cli, financial_rows, run_from_rows
from domainfit.artifacts import read_chunks, read_manifest
from domainfit.config import RunConfig
from domainfit.errors import EvaluationError
from domainfit.evaluate import MetricSpec, run_evaluation
from domainfit.evaluate.candidates import load_dense
from domainfit.evaluate.pooling import document_metrics, pool_max, rank_documents
from domainfit.evaluate.queries import task_from_queries
from domainfit.queries import load_queries
from domainfit.evaluate.retrieval import encode_texts

CONFIG = RunConfig.model_validate({"eval": {"dims": [384, 64]}})


# --------------------------------------------------------------------------- the pure core


def test_a_document_scores_as_its_best_chunk():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.2, 0.3, 0.8, 0.85]])
    owners = torch.tensor([0, 0, 1, 2])
    assert torch.equal(pool_max(scores, owners, 3), torch.tensor([[0.9, 0.5, 0.2], [0.3, 0.8, 0.85]]))


def test_documents_rank_by_pooled_score_then_by_id():
    # chunks of a.txt, a.txt, b.txt, c.txt; query 2 ties b and c at 0.8: b first (ascending id)
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.2, 0.3, 0.8, 0.8]])
    ranked, documents = rank_documents(scores, ["a.txt", "a.txt", "b.txt", "c.txt"], 3)
    assert documents == ["a.txt", "b.txt", "c.txt"]
    assert [[documents[i] for i in row] for row in ranked] == [["a.txt", "b.txt", "c.txt"], ["b.txt", "c.txt", "a.txt"]]


def test_document_metrics_on_hand_made_numbers():
    # query 1 wants b (ranked 2nd behind a, whose best chunk is 0.9); query 2 wants a and c:
    # c is 1st (0.85), a is 3rd (best chunk 0.3)
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.2, 0.3, 0.8, 0.85]])
    metrics = document_metrics(scores, ["a.txt", "a.txt", "b.txt", "c.txt"], [{"b.txt"}, {"a.txt", "c.txt"}])
    assert metrics["accuracy@1"] == 0.5 and metrics["accuracy@3"] == 1.0
    assert metrics["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    ideal_two = 1 + 1 / math.log2(3)
    assert metrics["ndcg@10"] == pytest.approx((1 / math.log2(3) + (1 + 1 / math.log2(4)) / ideal_two) / 2)
    assert metrics["recall@1"] == pytest.approx((0 + 1 / 2) / 2) and metrics["recall@3"] == 1.0
    assert metrics["precision@1"] == 0.5
    # the same number of chunks per document would not change a thing: a second chunk of b below its best
    more = torch.cat([scores, torch.tensor([[0.4], [0.1]])], dim=1)
    assert document_metrics(more, ["a.txt", "a.txt", "b.txt", "c.txt", "b.txt"],
                            [{"b.txt"}, {"a.txt", "c.txt"}]) == metrics


def test_document_metrics_reject_a_document_without_chunks():
    with pytest.raises(ValueError, match="'z.txt' has no chunk"):
        document_metrics(torch.tensor([[0.1, 0.2]]), ["a.txt", "b.txt"], [{"z.txt"}], MetricSpec())


# --------------------------------------------------------------------------- the queries file


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = json.dumps({"query": "how did revenue grow?", "relevant": ["NVDA_2023_10K.txt"]})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected an object"),
        ('{"relevant": ["a.txt"]}', "'query' must be a non-empty string"),
        ('{"query": "  ", "relevant": ["a.txt"]}', "'query' must be a non-empty string"),
        ('{"query": "q"}', "'relevant' must be a non-empty list"),
        ('{"query": "q", "relevant": []}', "'relevant' must be a non-empty list"),
        ('{"query": "q", "relevant": [3]}', "every 'relevant' entry must be a non-empty path"),
        ('{"query": "q", "relevant": ["a.txt"], "answer": "x"}', "unknown key 'answer'"),
        ('{"query": "q", "relevant": ["a.txt"], "id": true}', "'id' must be"),
    ],
)
def test_a_bad_line_is_a_one_line_error_naming_the_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "queries.jsonl", GOOD, "", line)
    with pytest.raises(EvaluationError) as error:
        load_queries(path)
    text = str(error.value)
    assert text.startswith(f"{path} line 3: ") and message in text and "\n" not in text


def test_queries_file_ids_paths_and_duplicates(tmp_path):
    path = write_lines(
        tmp_path / "q.jsonl",
        json.dumps({"query": "a", "relevant": ["./x/a.txt", "x\\a.txt", "b.txt"], "id": 7}),
        json.dumps({"query": "b", "relevant": "c.txt"}),
    )
    first, second = load_queries(path)
    assert (first.query_id, first.relevant) == ("7", ("x/a.txt", "b.txt"))
    assert (second.query_id, second.relevant, second.line) == ("line-2", ("c.txt",), 2)
    write_lines(path, json.dumps({"query": "a", "relevant": ["a"], "id": "q"}),
                json.dumps({"query": "b", "relevant": ["b"], "id": "q"}))
    with pytest.raises(EvaluationError, match=r"line 2: id 'q' is also on line 1"):
        load_queries(path)
    with pytest.raises(EvaluationError, match="queries file not found"):
        load_queries(tmp_path / "missing.jsonl")
    write_lines(path, "")
    with pytest.raises(EvaluationError, match="has no queries"):
        load_queries(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_from_rows(tmp_path_factory.mktemp("queries") / "run", financial_rows(40, stride=150))


def real_queries_file(path: Path, run, *, unknown: bool = True) -> Path:
    """Questions from other rows of the same filings, judged by the filing's document."""
    documents = {chunk.source for chunk in read_chunks(run.chunks)}
    rows = [row for row in financial_rows(400, stride=17, offset=5) if f"{row['ticker']}_{row['filing']}.txt" in documents]
    lines = [json.dumps({"query": row["question"], "relevant": [f"{row['ticker']}_{row['filing']}.txt"]})
             for row in rows[:30]]
    if unknown:
        lines.append(json.dumps({"query": "a filing the run never read", "relevant": ["ZZZZ_2099_10K.txt"]}))
        lines.append(json.dumps({"query": rows[0]["question"], "relevant": [f"{rows[0]['ticker']}_{rows[0]['filing']}.txt",
                                                                             "typo.txt"]}))
    return write_lines(path, *lines)


def test_unknown_paths_are_dropped_and_counted(run, tmp_path):
    queries = load_queries(real_queries_file(tmp_path / "q.jsonl", run))
    task, unknown = task_from_queries(queries, read_chunks(run.chunks), source="q.jsonl")
    assert len(task.query_ids) == len(queries) - 1 and task.by_document
    assert unknown.as_dict()["paths"] == 2 and unknown.judgements == 2 and unknown.dropped_queries == 1
    assert "2 relevant path(s) are not among the run's" in unknown.warning("q.jsonl", len(task.ranked_ids))
    only_unknown = write_lines(tmp_path / "bad.jsonl", json.dumps({"query": "q", "relevant": ["/abs/a.txt"]}))
    with pytest.raises(EvaluationError, match="none of the 1 queries names a document of the run"):
        task_from_queries(load_queries(only_unknown), read_chunks(run.chunks), source="bad.jsonl")


# --------------------------------------------------------------------------- the eval stage


@pytest.fixture(scope="module")
def evaluated(run, tmp_path_factory):
    path = real_queries_file(tmp_path_factory.mktemp("file") / "queries.jsonl", run)
    return path, run_evaluation(run, CONFIG, queries=path)


def test_run_evaluation_with_real_queries(run, evaluated):
    path, result = evaluated
    assert result.evidence == "queries" and result.headline is result.queries_metrics
    real = json.loads((run.eval_dir / "queries" / "metrics.json").read_text())
    assert real == result.queries_metrics and set(real) == {"base", "bm25", "base+bm25", "meta"}
    meta = real["meta"]
    documents = {chunk.source for chunk in read_chunks(run.chunks)}
    assert meta["judged_by"] == "document" and meta["corpus"] == len(documents)
    assert meta["chunks"] == len(read_chunks(run.chunks)) and meta["queries"] == 31 and meta["queries_in_file"] == 32
    assert meta["unknown_relevant"]["paths"] == 2 and meta["evidence"] == "queries"
    assert list(real["base"]) == ["384", "64"]
    assert all(0 < real["base"][dim]["ndcg@10"] <= 1 for dim in ("384", "64"))
    assert (run.eval_dir / "queries" / "report.md").exists() and (run.eval_dir / "metrics.json").exists()
    assert result.metrics["meta"]["evidence"] == "synthetic"  # the test split is still evaluated
    assert any("not among the run's" in warning for warning in result.warnings)
    lines = result.summary().splitlines()
    assert lines[0].startswith("warning: ") and lines[-2].startswith("real queries (headline): 31 queries vs")
    counts = read_manifest(run)["stages"]["eval"]["counts"]
    assert counts["evidence"] == "queries" and counts["real_queries"] == 31 and counts["unknown_relevant_paths"] == 2


def test_engine_equals_the_pure_core(run, evaluated):
    """The engine's pooled numbers are the pure function's on the same chunk scores."""
    path, result = evaluated
    chunks = read_chunks(run.chunks)
    task, _ = task_from_queries(load_queries(path), chunks)
    model = load_dense("minilm")
    queries = encode_texts(model, task.queries, kind="query")
    corpus = encode_texts(model, task.corpus, kind="document")
    expected = document_metrics(queries @ corpus.T, [chunk.source for chunk in chunks],
                                [set(task.relevant[qid]) for qid in task.query_ids])
    for name, number in expected.items():
        assert result.queries_metrics["base"]["384"][name] == pytest.approx(number, abs=1e-6), name


def test_a_second_run_reuses_real_query_results(run, evaluated):
    path, first = evaluated
    again = run_evaluation(run, CONFIG, queries=path)
    assert again.reused == ["base", "bm25", "base+bm25"] and again.queries_metrics["base"] == first.queries_metrics["base"]


def test_real_queries_alone_when_the_run_has_no_pairs(run, tmp_path):
    from domainfit.artifacts import RunDir, write_chunks

    bare = RunDir(tmp_path / "bare").ensure()
    write_chunks(bare.chunks, read_chunks(run.chunks))
    result = run_evaluation(bare, CONFIG, queries=real_queries_file(tmp_path / "q.jsonl", run, unknown=False),
                            labels=["bm25"])
    assert result.metrics == {} and result.queries_metrics["meta"]["queries"] == 30
    assert any("synthetic test split not evaluated" in warning for warning in result.warnings)


# --------------------------------------------------------------------------- the CLI


def test_cli_eval_with_queries_prints_the_real_queries_table_last(run, evaluated, capsys):
    path, _ = evaluated
    assert cli("eval", str(run.root), "--queries", str(path), "--dims", "384,64") == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.index("synthetic") < out.rindex("real queries")
    assert "not among the run's" in captured.err


def test_cli_eval_bad_queries_line_is_one_line(run, tmp_path, capsys):
    path = write_lines(tmp_path / "q.jsonl", GOOD, '{"query": 1, "relevant": ["a"]}')
    assert cli("eval", str(run.root), "--queries", str(path)) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{path.resolve()} line 2: 'query' must be a non-empty string" in lines[0]


def test_one_chunk_per_document_gives_the_beir_numbers(tmp_path):
    """With one chunk per abstract, judging by document is BEIR's evaluation: the same numbers."""
    import csv

    from domainfit.artifacts import Chunk, RunDir, content_hash, write_chunks
    from domainfit.evaluate import evaluate_beir
    from domainfit.evaluate.beir import document_text
    from test_eval_cli import cranfield_slice

    beir = cranfield_slice(tmp_path / "cranfield", n_docs=40)
    docs = [json.loads(line) for line in (beir / "corpus.jsonl").open(encoding="utf-8")]
    run = RunDir(tmp_path / "run").ensure()
    write_chunks(run.chunks, [
        Chunk(chunk_id=content_hash(doc["_id"]), doc_id=doc["_id"], source=f"{doc['_id']}.txt",
              text=document_text(doc.get("title", ""), doc["text"]), char_start=0, char_end=1, n_tokens=1)
        for doc in docs
    ])
    texts = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (beir / "queries.jsonl").open()}
    relevant: dict[str, list[str]] = {}
    with (beir / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        for query_id, doc_id, score in list(csv.reader(handle, delimiter="\t"))[1:]:
            if int(score) > 0:
                relevant.setdefault(query_id, []).append(f"{doc_id}.txt")
    queries = write_lines(tmp_path / "queries.jsonl", *(
        json.dumps({"id": qid, "query": texts[qid], "relevant": paths}) for qid, paths in relevant.items()))
    ours = run_evaluation(run, CONFIG, queries=queries).queries_metrics
    theirs = evaluate_beir(beir, RunDir(tmp_path / "beir-out"), CONFIG, models=["minilm"]).metrics
    assert ours["meta"]["queries"] == theirs["meta"]["queries"] > 0
    for label, dim in (("base", "384"), ("base", "64"), ("bm25", "full")):
        for name in ("ndcg@10", "mrr@10", "recall@10", "map@100"):
            assert ours[label][dim][name] == pytest.approx(theirs[label][dim][name], abs=1e-9), (label, dim, name)
