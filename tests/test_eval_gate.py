"""The no-regression gate: an adapted model worse than the base is not promoted, and the
report, the manifest and the command line all say so; a better one is promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import cli, financial_rows, run_from_rows
from domainfit.artifacts import read_manifest
from domainfit.config import RunConfig
from domainfit.evaluate import run_evaluation
from domainfit.evaluate.gate import judge
from domainfit.report import write_run_report
from test_eval_queries import real_queries_file

CONFIG = RunConfig.model_validate({"eval": {"dims": [384, 64]}})


def metrics(base: dict[str, float], tuned: dict[str, float]) -> dict:
    return {"base": {dim: {"ndcg@10": v} for dim, v in base.items()},
            "finetuned": {dim: {"ndcg@10": v} for dim, v in tuned.items()},
            "meta": {"main_metric": "ndcg@10", "queries": 12, "evidence": "queries", "source": "/x/q.jsonl"}}


def test_better_means_strictly_greater_at_the_largest_dim():
    assert judge(metrics({"384": 0.5, "64": 0.4}, {"384": 0.51, "64": 0.3}), evidence="queries").promoted
    tie = judge(metrics({"384": 0.5}, {"384": 0.5}), evidence="queries")
    assert not tie.promoted and tie.margin == 0.0
    # better at every small dim, worse at the full one: not promoted
    mixed = judge(metrics({"384": 0.5, "128": 0.3, "64": 0.2}, {"384": 0.49, "128": 0.4, "64": 0.4}), evidence="queries")
    assert not mixed.promoted and mixed.dim == "384" and mixed.evidence_title == "12 real queries (q.jsonl)"
    # only dims both have count: the adapted model was evaluated at 256 only
    common = judge(metrics({"384": 0.9, "256": 0.5}, {"256": 0.6}), evidence="queries")
    assert common.promoted and common.dim == "256"
    assert judge({"base": {"384": {"ndcg@10": 0.5}}, "meta": {}}, evidence="synthetic") is None


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory, minilm_path) -> Path:
    """MiniLM with noise on every weight: a deliberately worse 'adapted' model."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                noise = torch.randn(parameter.shape, generator=generator) * parameter.std() * 0.8
                parameter.add_(noise)
    path = tmp_path_factory.mktemp("broken") / "model"
    model.save(str(path))
    return path


@pytest.fixture
def run_with_worse_model(tmp_path, broken_model):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    run.model_dir.symlink_to(broken_model, target_is_directory=True)
    return run


def test_a_worse_adapted_model_is_not_promoted(run_with_worse_model, tmp_path, capsys):
    run = run_with_worse_model
    queries = real_queries_file(tmp_path / "queries.jsonl", run, unknown=False)
    assert cli("eval", str(run.root), "--queries", str(queries), "--dims", "384,64") == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("use: the base model minilm; the adapted model") and "30 real queries" in last

    manifest = read_manifest(run)
    assert manifest["promoted"] is False
    promotion = manifest["promotion"]
    assert promotion["evidence"] == "queries" and promotion["dim"] == "384" and promotion["adapted"] < promotion["base"]
    real = json.loads((run.eval_dir / "queries" / "metrics.json").read_text())
    assert promotion["adapted"] == real["finetuned"]["384"]["ndcg@10"]

    report = (run.eval_dir / "report.md").read_text().splitlines()
    assert report[0].startswith("**Not promoted: the adapted model is not better than the base model** on 30 real")
    text = "\n".join(report)
    assert text.index("## ndcg@10 by dim") < text.index("## Below the headline: synthetic questions")
    assert "finetuned+bm25" in text and "base+bm25" in text

    path, tables = write_run_report(run, CONFIG)
    lines = path.read_text().splitlines()
    assert lines[0] == report[0]
    run_report = "\n".join(lines)
    assert run_report.index("## Retrieval on real queries") < run_report.index("## Below: synthetic questions")
    assert tables.rindex("finetuned") > 0 and (run.model_dir / "modules.json").exists()  # nothing deleted


def test_on_synthetic_evidence_the_verdict_says_it_is_optimistic(run_with_worse_model):
    run = run_with_worse_model
    result = run_evaluation(run, CONFIG)
    assert result.verdict is not None and result.verdict.evidence == "synthetic"
    first = (run.eval_dir / "report.md").read_text().splitlines()[0]
    assert "--queries FILE" in first and "optimistic" in first
    assert read_manifest(run)["promoted"] is result.verdict.promoted
    assert result.summary().splitlines()[-1] == result.advice()
    report = write_run_report(run, CONFIG)[0].read_text()
    assert "## Retrieval on synthetic questions from the same generator (optimistic)" in report
    assert "domainfit eval RUN --queries FILE" in report


def test_a_better_adapted_model_is_promoted(tmp_path, broken_model, minilm_path):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    run.model_dir.symlink_to(minilm_path, target_is_directory=True)
    config = RunConfig.model_validate({"base_model": str(broken_model), "eval": {"dims": [384], "bm25": False}})
    result = run_evaluation(run, config, queries=real_queries_file(tmp_path / "q.jsonl", run, unknown=False))
    assert result.verdict.promoted and read_manifest(run)["promoted"] is True
    assert result.advice().startswith(f"use: the adapted model {run.model_dir}")
    assert (run.eval_dir / "report.md").read_text().startswith("**Promoted: the adapted model beats the base model**")
