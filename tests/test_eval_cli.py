"""`domainfit eval RUN` and `domainfit eval --beir DIR --model minilm --out OUT`, in-process
(so the loaded MiniLM is shared), on a small run and on a slice of Cranfield."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from conftest import SHARED_BENCHMARKS, cli, financial_rows, run_from_rows

CRANFIELD = SHARED_BENCHMARKS / "cranfield"


def cranfield_slice(root: Path, n_docs: int = 30) -> Path:
    """The first ``n_docs`` abstracts, with the queries and qrels that fall inside them."""
    if not CRANFIELD.exists():
        pytest.skip(f"benchmark data not found at {CRANFIELD}")
    docs = [json.loads(line) for line in (CRANFIELD / "corpus.jsonl").open(encoding="utf-8")][:n_docs]
    keep = {doc["_id"] for doc in docs}
    with (CRANFIELD / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        qrels = [row for row in list(csv.reader(handle, delimiter="\t"))[1:] if row[1] in keep]
    judged = {row[0] for row in qrels}
    queries = [json.loads(line) for line in (CRANFIELD / "queries.jsonl").open(encoding="utf-8")]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries if q["_id"] in judged))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in qrels))
    return root


def test_eval_run_dir(tmp_path, capsys):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    assert cli("eval", str(run.root), "--dims", "384,128") == 0
    output = capsys.readouterr().out
    assert "ndcg@10" in output and "dim 128" in output and "leak check passed" in output
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert list(metrics["base"]) == ["384", "128"] and "bm25" in metrics
    assert (run.eval_dir / "report.md").exists() and (run.splits_dir / "split.json").exists()


def test_eval_beir_with_minilm_as_base(tmp_path, capsys):
    beir = cranfield_slice(tmp_path / "cranfield")
    out = tmp_path / "out"
    assert cli("eval", "--beir", str(beir), "--model", "minilm", "--out", str(out), "--dims", "384,128") == 0
    captured = capsys.readouterr()
    assert "queries vs 30 documents" in captured.out
    # a long eval is never silent: a line per model before and after, on stderr
    assert re.search(r"eval: base: encoding \d+ queries and 30 documents", captured.err)
    assert re.search(r"eval: base: ndcg@10 384: 0\.\d{4}, 128: 0\.\d{4} in \d+s", captured.err)
    assert re.search(r"eval: bm25: indexing 30 documents", captured.err)
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"base", "bm25", "base+bm25", "meta"}
    meta = metrics["meta"]
    assert meta["graded"] is True and meta["corpus"] == 30 and meta["split"] is None
    assert "graded_ndcg@10" in metrics["base"]["384"] and 0 < metrics["base"]["384"]["ndcg@10"] <= 1
    assert (out / "eval" / "report.md").exists() and (out / "eval" / "ndcg_by_dim.png").exists()
    assert json.loads((out / "manifest.json").read_text())["stages"]["eval"]["status"] == "done"


def test_eval_beir_errors_are_one_line(tmp_path, capsys):
    assert cli("eval", "--beir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "BEIR folder not found" in lines[0]


def test_encoding_a_large_corpus_shows_a_progress_bar(minilm_path, capsys):
    from domainfit.evaluate.retrieval import PROGRESS_FROM, encode_texts
    from domainfit.models import load_model

    model = load_model("minilm")
    encode_texts(model, ["short"] * (PROGRESS_FROM - 1), kind="document", batch_size=256)
    assert "Batches" not in capsys.readouterr().err
    encode_texts(model, ["short"] * PROGRESS_FROM, kind="document", batch_size=256)
    assert "Batches" in capsys.readouterr().err
