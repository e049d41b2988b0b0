"""The eval stage on a small real run: report files, metrics.json's shape, plots,
reuse of earlier results, the fine-tuned model, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import matplotlib.image
import pytest

from conftest import financial_rows, run_from_rows
from domainfit.artifacts import ReviewDecision, RunDir, read_chunks, read_jsonl, read_manifest, write_chunks
from domainfit.config import RunConfig
from domainfit.errors import ArtifactError, EvaluationError, ModelNotFoundError
from domainfit.evaluate import markdown_table, run_evaluation
from domainfit.evaluate.candidates import parse_model
from domainfit.evaluate.beir import document_text, load_beir
from domainfit.splits import ensure_splits, read_splits
from domainfit.review import record_decision

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFIG = RunConfig.model_validate({"eval": {"dims": [384, 64]}})


def small_run(root: Path) -> RunDir:
    """40 real financial pairs over many companies: fast to encode."""
    return run_from_rows(root, financial_rows(40, stride=150))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    run = small_run(tmp_path_factory.mktemp("eval") / "run")
    return run, run_evaluation(run, CONFIG)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_reports_and_metrics_shape(evaluated):
    run, result = evaluated
    eval_dir = run.eval_dir
    for name in ("metrics.json", "report.md", "ndcg_by_dim.png", "delta_by_dim.png"):
        assert (eval_dir / name).is_file(), name
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert set(metrics) == {"base", "bm25", "base+bm25", "meta"}
    assert list(metrics["base"]) == ["384", "64"] and list(metrics["bm25"]) == ["full"]
    names = metrics["meta"]["metric_names"]
    assert names[:2] == ["accuracy@1", "accuracy@3"] and {"ndcg@10", "mrr@10", "map@100", "recall@5"} <= set(names)
    assert list(metrics["base+bm25"]) == ["384", "64"]
    for label in ("base", "bm25", "base+bm25"):
        for row in metrics[label].values():
            assert set(row) == set(names) and all(0.0 <= value <= 1.0 for value in row.values())
    meta = metrics["meta"]
    test_ids = read_splits(run).test
    assert meta["queries"] == len(test_ids) and meta["corpus"] == len(read_chunks(run.chunks))
    assert meta["split"]["by"] == "document" and meta["leak_check"] == {"status": "passed", "leaked_chunks": 0}
    assert meta["bytes_per_vector"] == {"384": 1536, "64": 256}
    assert set(meta["latency_ms_per_query"]["base"]) == {"384", "64"}
    assert_png(eval_dir / "ndcg_by_dim.png")
    assert_png(eval_dir / "delta_by_dim.png")

    report = (eval_dir / "report.md").read_text()
    assert "by **document**" in report and "leak check: **passed**" in report and "## dim 64" in report
    assert "warning: optimistic" not in report  # the by-query warning is for by-query splits only
    # but generated test questions are called what they are, with the way to real queries
    assert "synthetic questions from the same generator (optimistic)" in report and "--queries FILE" in report
    assert markdown_table(metrics) in report
    table = markdown_table(metrics).splitlines()
    assert table[0] == "| ndcg@10 | dim 384 | dim 64 |" and table[2].startswith("| base | ")
    assert "%)" in table[3]  # bm25 against base: absolute and relative deltas

    record = read_manifest(run)["stages"]["eval"]
    assert record["status"] == "done" and record["counts"]["queries"] == len(test_ids)
    assert f"{len(test_ids)} queries" in result.summary() and "report.md" in result.summary()


def test_a_second_run_reuses_the_results(evaluated):
    run, first = evaluated
    again = run_evaluation(run, CONFIG)
    assert again.reused == ["base", "bm25", "base+bm25"]
    assert again.metrics["base"] == first.metrics["base"]


def test_finetuned_and_extra_models_sit_beside_the_base(evaluated, minilm_path, tmp_path):
    run, first = evaluated
    os.symlink(minilm_path, run.model_dir)
    try:
        out = RunDir(tmp_path / "out")
        out.eval_dir.mkdir(parents=True)
        shutil.copy(run.eval_dir / "metrics.json", out.eval_dir / "metrics.json")  # results to merge with
        result = run_evaluation(run, CONFIG, out=out)
        assert result.labels() == ["base", "finetuned", "bm25", "base+bm25", "finetuned+bm25"]
        # the same weights under another label: reused, not re-encoded; identical numbers, zero deltas
        assert result.reused == ["base", "finetuned", "bm25", "base+bm25", "finetuned+bm25"]
        assert result.metrics["finetuned"] == first.metrics["base"]
        assert result.metrics["finetuned+bm25"] == first.metrics["base+bm25"]
        assert "+0.0000, +0.0%" in result.markdown()
        assert_png(out.eval_dir / "delta_by_dim.png")
        baseline = run_evaluation(run, CONFIG, out=out, include_finetuned=False)
        assert baseline.labels() == ["base", "bm25", "base+bm25"] and baseline.reused == baseline.labels()
    finally:
        run.model_dir.unlink()


def test_by_query_split_is_labelled_optimistic(tmp_path):
    rows = financial_rows(40, stride=150)
    run = run_from_rows(tmp_path / "run", rows + [dict(row, question=row["question"] + " Explain.") for row in rows])
    config = RunConfig.model_validate({"split": {"by": "query"}})
    result = run_evaluation(run, config, labels=["bm25"])
    assert result.metrics["meta"]["split"]["optimistic"] is True
    assert result.metrics["meta"]["leak_check"]["leaked_chunks"] > 0
    assert "warning: optimistic" in (run.eval_dir / "report.md").read_text()


def test_empty_test_split_is_an_error(tmp_path):
    run = small_run(tmp_path / "run")
    for pair_id in ensure_splits(run, CONFIG.split).test:
        record_decision(run, ReviewDecision(pair_id=pair_id, decision="reject"))
    with pytest.raises(EvaluationError, match=r"test split is empty: none of the \d+ pair ids"):
        run_evaluation(run, CONFIG)


def test_test_chunk_missing_from_the_corpus_is_an_error(tmp_path):
    run = small_run(tmp_path / "run")
    splits = ensure_splits(run, CONFIG.split)
    test_chunk = {row["pair_id"]: row["chunk_id"] for row in read_jsonl(run.split_file("test"))}[splits.test[0]]
    write_chunks(run.chunks, [chunk for chunk in read_chunks(run.chunks) if chunk.chunk_id != test_chunk])
    with pytest.raises(EvaluationError, match=r"1 test pair chunk id\(s\) are not in chunks.parquet"):
        run_evaluation(run, CONFIG, labels=["bm25"])


def test_a_leaking_split_fails_loudly(tmp_path):
    run = small_run(tmp_path / "run")
    splits = ensure_splits(run, CONFIG.split)
    rows = read_jsonl(run.split_file("train"))
    (run.split_file("train")).write_text(
        "".join(json.dumps(row) + "\n" for row in rows + read_jsonl(run.split_file("test"))[:1])
    )
    assert splits.test
    with pytest.raises(EvaluationError, match="leak check failed: 1 test chunk"):
        run_evaluation(run, CONFIG, labels=["bm25"])


def test_a_model_that_cannot_load_names_the_folder(tmp_path):
    run = small_run(tmp_path / "run")
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="broken-model"):
        run_evaluation(run, CONFIG, models=[f"ft={broken}"], labels=["ft"])
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        run_evaluation(run, CONFIG, models=[str(tmp_path / "no-such-model")], labels=["no-such-model"])


def test_model_specs_parse_like_the_cli_says():
    assert parse_model("minilm").label == "base"
    assert parse_model("ft=runs/x/model") == parse_model("ft=runs/x/model")
    assert parse_model("ft=runs/x/model").location == "runs/x/model"
    assert parse_model("runs/legal-v2/").label == "legal-v2"
    with pytest.raises(EvaluationError, match="reserved"):
        parse_model("meta=runs/x/model")


def write_beir(root: Path, corpus, queries, qrels) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c}\t{s}\n" for q, c, s in qrels))
    return root


def test_beir_folder_loads_with_grades_and_skips_unjudged_queries(tmp_path):
    corpus = [{"_id": "1", "title": "Wings", "text": "Lift of wings."}, {"_id": "2", "title": "Heat", "text": "Heat flow."}]
    queries = [{"_id": "a", "text": "lift?"}, {"_id": "b", "text": "heat?"}, {"_id": "c", "text": "unjudged"}]
    task = load_beir(write_beir(tmp_path / "beir", corpus, queries, [("a", "1", 3), ("a", "2", 0), ("b", "2", 1)]))
    assert task.query_ids == ["a", "b"] and task.relevant == {"a": {"1": 3}, "b": {"2": 1}}
    assert task.graded and task.corpus[0] == "Wings Lift of wings."
    assert task.details == {"queries_without_qrels": 1, "judged_not_relevant": 1}
    assert document_text("wing tests .", "wing tests . more text") == "wing tests . more text"


@pytest.mark.parametrize(
    "qrels, message",
    [
        ([("a", "9", 1)], r"1 corpus id\(s\) in .*test.tsv are not in corpus.jsonl \(1 documents\), e.g. 9"),
        ([("z", "1", 1)], r"1 query id\(s\) in .*test.tsv are not in queries.jsonl"),
        ([("a", "1", 0)], "no query in .* has a relevant document"),
    ],
)
def test_bad_beir_folders_are_one_line_errors(tmp_path, qrels, message):
    folder = write_beir(tmp_path / "beir", [{"_id": "1", "title": "", "text": "t"}], [{"_id": "a", "text": "q"}], qrels)
    with pytest.raises(EvaluationError, match=message):
        load_beir(folder)


def test_missing_beir_file_is_named(tmp_path):
    (tmp_path / "beir").mkdir()
    with pytest.raises(EvaluationError, match="corpus.jsonl is missing"):
        load_beir(tmp_path / "beir")


@pytest.mark.parametrize(
    "queries, message",
    [
        ([{"_id": "a", "text": "q"}, {"_id": "b", "text": "  "}], r"queries.jsonl row 2 \(_id b\): the query text is empty"),
        ([{"_id": None, "text": "q"}], r"queries.jsonl row 1: '_id' is empty"),
    ],
)
def test_beir_queries_without_text_or_id_name_their_row(tmp_path, queries, message):
    folder = write_beir(tmp_path / "beir", [{"_id": "1", "title": "", "text": "t"}], queries, [("a", "1", 1)])
    with pytest.raises(ArtifactError, match=message):
        load_beir(folder)


def test_a_latin1_qrels_file_names_its_line(tmp_path):
    folder = write_beir(tmp_path / "beir", [{"_id": "1", "title": "", "text": "t"}], [{"_id": "a", "text": "q"}], [])
    (folder / "qrels" / "test.tsv").write_bytes("query-id\tcorpus-id\tscore\na\t1\t1\n# café\t1\t1\n".encode("latin-1"))
    with pytest.raises(ArtifactError, match=r"test.tsv line 3 is not UTF-8"):
        load_beir(folder)
