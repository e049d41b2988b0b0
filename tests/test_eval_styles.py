"""The main metric per query style: each style's test questions scored alone, from the same rankings."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import financial_rows, run_from_rows
from domainfit.artifacts import Pair, RunDir, read_chunks, read_jsonl, write_jsonl
from domainfit.config import RunConfig
from domainfit.evaluate import run_evaluation
from domainfit.evaluate.task import task_from_pairs
from domainfit.splits import ensure_splits

CONFIG = RunConfig.model_validate({"eval": {"dims": [384, 64]}, "split": {"by": "chunk"}})


def styled_run(root: Path) -> RunDir:
    """60 real financial pairs; every third one is a claim, every third a keyword query."""
    run = run_from_rows(root, financial_rows(60, stride=120))
    pairs = [Pair.model_validate(row) for row in read_jsonl(run.pairs)]
    styles = ["question", "claim", "keywords"]
    write_jsonl(run.pairs, [pair.model_copy(update={"style": styles[index % 3]}) for index, pair in enumerate(pairs)])
    return run


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    run = styled_run(tmp_path_factory.mktemp("styles") / "run")
    return run, run_evaluation(run, CONFIG)


def test_each_style_is_scored_alone_and_matches_an_eval_of_that_style_only(evaluated, tmp_path):
    run, result = evaluated
    by_style = result.metrics["meta"]["by_style"]
    splits = ensure_splits(run, CONFIG.split)
    test_pairs = [pair for pair in (Pair.model_validate(row) for row in read_jsonl(run.pairs))
                  if pair.pair_id in set(splits.test)]
    assert set(by_style) == {pair.style for pair in test_pairs}
    assert sum(entry["queries"] for entry in by_style.values()) == result.metrics["meta"]["queries"]

    from domainfit.evaluate.engine import evaluate_task
    from domainfit.evaluate.candidates import candidate_models

    chunks = read_chunks(run.chunks)
    for style, entry in by_style.items():
        alone = task_from_pairs([pair for pair in test_pairs if pair.style == style], chunks)
        metrics, _ = evaluate_task(alone, candidate_models(CONFIG), CONFIG)
        assert entry["queries"] == len(alone.queries)
        for label in ("base", "bm25", "base+bm25"):
            assert entry[label] == {dim: round(values["ndcg@10"], 4) for dim, values in metrics[label].items()}


def test_the_report_has_a_table_per_style_and_a_reused_eval_keeps_it(evaluated):
    run, result = evaluated
    report = (run.eval_dir / "report.md").read_text(encoding="utf-8")
    assert "ndcg@10 by query style" in report
    for style in result.metrics["meta"]["by_style"]:
        assert f"| {style} |" in report
    again = run_evaluation(run, CONFIG)
    assert again.reused == ["base", "bm25", "base+bm25"]  # nothing re-encoded ...
    assert again.metrics["meta"]["by_style"] == result.metrics["meta"]["by_style"]  # ... and the styles kept


def test_one_style_has_no_style_table(tmp_path):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    result = run_evaluation(run, CONFIG)
    assert "by_style" not in result.metrics["meta"]
    assert "by query style" not in (run.eval_dir / "report.md").read_text(encoding="utf-8")
