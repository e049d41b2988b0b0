"""The vector cache across stages: `eval --beir` twice, a changed document, `--no-cache`, and a
pipeline whose baseline eval finds mining's chunk vectors (real MiniLM, real LanceDB)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli, financial_rows, run_from_rows
from domainfit.artifacts import RunDir, read_chunks, read_json
from domainfit.config import load_config
from test_eval_cli import cranfield_slice

DENSE_LABELS = ("base", "bm25", "base+bm25")


def _eval_beir(beir: Path, out: Path, *flags: str) -> dict:
    assert cli("eval", "--beir", str(beir), "--out", str(out), "--dims", "384,64", *flags) == 0
    return json.loads((out / "eval" / "metrics.json").read_text())


def _counts(out: Path) -> dict:
    return read_json(out / "manifest.json")["stages"]["eval"]["counts"]


def test_second_eval_beir_encodes_nothing_and_scores_the_same(tmp_path, capsys):
    beir, cache = cranfield_slice(tmp_path / "cranfield"), tmp_path / "vectors"
    first = _eval_beir(beir, tmp_path / "first", "--cache", str(cache))
    texts = first["meta"]["queries"] + first["meta"]["corpus"]
    assert _counts(tmp_path / "first")["texts_encoded"] == texts
    second = _eval_beir(beir, tmp_path / "second", "--cache", str(cache))  # a new --out: no metrics to reuse
    assert _counts(tmp_path / "second")["texts_encoded"] == 0
    assert _counts(tmp_path / "second")["texts_reused"] == texts
    assert "eval: base: 0 texts encoded" in capsys.readouterr().err
    assert {label: second[label] for label in DENSE_LABELS} == {label: first[label] for label in DENSE_LABELS}
    latency = [metrics["meta"]["latency_ms_per_query"]["base"]["384"]["encode"] for metrics in (first, second)]
    assert latency[0] > 0 and abs(latency[0] - latency[1]) < 1e-3  # a cached query keeps its measured cost


def test_a_changed_document_is_the_only_text_encoded(tmp_path):
    beir, cache = cranfield_slice(tmp_path / "cranfield"), tmp_path / "vectors"
    _eval_beir(beir, tmp_path / "first", "--cache", str(cache))
    corpus = beir / "corpus.jsonl"
    docs = [json.loads(line) for line in corpus.read_text().splitlines()]
    docs[3]["text"] += " The boundary layer separates near the trailing edge."
    corpus.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    _eval_beir(beir, tmp_path / "second", "--cache", str(cache))
    assert _counts(tmp_path / "second")["texts_encoded"] == 1


def test_no_cache_encodes_everything_and_keeps_nothing(tmp_path, monkeypatch):
    beir, user_cache = cranfield_slice(tmp_path / "cranfield"), tmp_path / "user-cache"
    monkeypatch.setenv("DOMAINFIT_CACHE_DIR", str(user_cache))
    metrics = _eval_beir(beir, tmp_path / "first")
    assert user_cache.is_dir()  # the default: the user cache folder
    _eval_beir(beir, tmp_path / "second", "--no-cache")
    assert _counts(tmp_path / "second")["texts_encoded"] == metrics["meta"]["queries"] + metrics["meta"]["corpus"]


def test_baseline_eval_encodes_only_the_queries_after_mining(tmp_path):
    from domainfit.evaluate import run_evaluation
    from domainfit.mining import run_mining

    run = run_from_rows(tmp_path / "run", financial_rows(60, stride=80))
    config = load_config(overrides={"eval.bm25": False, "eval.dims": [384]})
    run_mining(run, config, progress=False)
    run_evaluation(run, config, include_finetuned=False)
    chunk_texts = {chunk.text for chunk in read_chunks(run.chunks)}
    mine = read_json(run.manifest)["stages"]["mine"]["counts"]
    baseline = read_json(run.manifest)["stages"]["baseline"]["counts"]
    assert mine["texts_encoded"] >= len(chunk_texts)  # every chunk, then the train and val questions
    assert baseline["texts_reused"] == len(chunk_texts)
    assert baseline["texts_encoded"] == baseline["queries"]
    assert (run.vectors_dir).is_dir()


def test_vector_cache_off_makes_every_stage_encode_for_itself(tmp_path):
    from domainfit.evaluate import run_evaluation
    from domainfit.mining import run_mining

    run = run_from_rows(tmp_path / "run", financial_rows(60, stride=80))
    config = load_config(overrides={"eval.bm25": False, "eval.dims": [384], "vector_cache": False})
    run_mining(run, config, progress=False)
    run_evaluation(run, config, include_finetuned=False)
    baseline = read_json(run.manifest)["stages"]["baseline"]["counts"]
    assert baseline["texts_encoded"] == baseline["queries"] + len({c.text for c in read_chunks(run.chunks)})
    assert not RunDir(run.root).vectors_dir.exists()
