"""The run report gathers the stages' records and says how much the numbers rest on."""

from __future__ import annotations

from domainfit.artifacts import RunDir, update_manifest, write_json
from domainfit.config import RunConfig
from domainfit.report import write_run_report


def run_with_results(tmp_path, test_queries: int) -> RunDir:
    run = RunDir(tmp_path).ensure()
    update_manifest(run, split={"by": "document", "train": 10, "val": 2, "test": test_queries})
    write_json(
        run.eval_dir / "metrics.json",
        {
            "base": {"384": {"ndcg@10": 0.5}, "64": {"ndcg@10": 0.4}},
            "finetuned": {"384": {"ndcg@10": 0.6}, "64": {"ndcg@10": 0.5}},
        },
    )
    return run


def test_few_test_queries_are_called_noise(tmp_path):
    path, table = write_run_report(run_with_results(tmp_path, 4), RunConfig())
    assert "4 held-out queries" in table and "noise" in table
    assert "noise" in path.read_text()
    assert "0.6000" in table


def test_enough_test_queries_carry_no_warning(tmp_path):
    _, table = write_run_report(run_with_results(tmp_path, 300), RunConfig())
    assert "300 held-out queries" in table and "noise" not in table
